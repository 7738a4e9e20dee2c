"""Recognize near misses: credential requests written without the school's exact subject.

Policy as data, like the subject rules: a vocabulary (concept -> terms, per language) and
an ordered table of rules, read from a TOML mapping (credmail/data/near_miss_rules.toml,
replaceable and extendable in the config). The first rule whose conditions hold decides,
and its name is the explanation. Only the subject and the first lines the sender wrote
(quotes and signatures already cut off) are read. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIRST_LINES = 12
FIRST_CHARS = 1_500
NO_RULE = "no_rule"
ACTIONS = ("exclude", "flag")
SENDERS = ("automated", "staff")
WHERE = ("subject", "text", "both")
_FUZZY_MIN = 6
_NON_WORD = re.compile(r"[^\w]+|_")


class RulesError(ValueError):
    """The near-miss rules are malformed: one line naming the key."""


def fold(text: str) -> str:
    """Lower case, accents and marks removed, punctuation as single spaces."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NON_WORD.sub(" ", bare.casefold()).split())


@dataclass(frozen=True)
class Term:
    """One vocabulary entry: `text` folded; `prefix` (word*) or `fuzzy` (~word)."""

    text: str
    concept: str
    language: str
    prefix: bool = False
    fuzzy: bool = False
    anywhere: bool = False

    def found_in(self, text: str, words: frozenset[str]) -> bool:
        if self.anywhere:
            return self.text in text
        if self.fuzzy:
            return self.text in words or any(_one_typo(self.text, word) for word in words)
        padded = f" {text} "
        needle = f" {self.text}" if self.prefix else f" {self.text} "
        return needle in padded


def _one_typo(term: str, word: str) -> bool:
    """One letter missing, added or changed, or two neighbours swapped (not equal)."""
    if abs(len(term) - len(word)) > 1 or len(word) < _FUZZY_MIN or term == word:
        return False
    if len(term) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(term, word, strict=True)) if a != b]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and term[diff[0]] == word[diff[1]]
            and term[diff[1]] == word[diff[0]]
        )
    short, long = (term, word) if len(term) < len(word) else (word, term)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


@dataclass(frozen=True)
class Rule:
    """One row: every condition must hold for the row to decide."""

    name: str
    action: str
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    where: str = "both"
    sender: str | None = None

    def holds(self, found: Mapping[str, set[str]], sender: frozenset[str]) -> bool:
        present = found[self.where]
        if self.sender is not None and self.sender not in sender:
            return False
        if not all(concept in present for concept in self.all):
            return False
        if self.any and not any(concept in present for concept in self.any):
            return False
        return not any(concept in present for concept in self.none)


@dataclass(frozen=True)
class NearMissRules:
    """The vocabulary and the ordered rules."""

    terms: tuple[Term, ...]
    rules: tuple[Rule, ...]

    @classmethod
    def from_data(
        cls,
        data: Mapping[str, Any],
        extra_vocabulary: Mapping[str, Any] | None = None,
        extra_rules: Sequence[Mapping[str, Any]] = (),
    ) -> NearMissRules:
        """Build from the data file's mapping; the config's extra terms are added and its
        extra rules come first (so the school's own exclusions win)."""
        vocabulary = data.get("vocabulary", {})
        terms = list(_terms(vocabulary))
        terms += _terms(extra_vocabulary or {}, extra=True)
        rules = [_rule(row, f"near_miss_rules[{i}]") for i, row in enumerate(extra_rules)]
        rules += [_rule(row, f"rules[{i}]") for i, row in enumerate(data.get("rules", []))]
        known = {term.concept for term in terms}
        for rule in rules:
            unknown = set(rule.all + rule.any + rule.none) - known
            if unknown:
                raise RulesError(f"rule {rule.name!r}: unknown concept {sorted(unknown)[0]!r}")
        if not rules:
            raise RulesError("no rules")
        return cls(tuple(terms), tuple(rules))


def _terms(vocabulary: Mapping[str, Any], extra: bool = False) -> Iterable[Term]:
    where = "near_miss_vocabulary" if extra else "vocabulary"
    for language, concepts in vocabulary.items():
        if not isinstance(concepts, Mapping):
            raise RulesError(f"{where}.{language}: must be a table of concept = [terms]")
        anywhere = bool(concepts.get("anywhere", False))
        for concept, entries in concepts.items():
            if concept == "anywhere":
                continue
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise RulesError(f"{where}.{language}.{concept}: must be a list of strings")
            for entry in entries:
                term = _term(entry, concept, language, anywhere)
                if term is None:
                    raise RulesError(f"{where}.{language}.{concept}: empty term {entry!r}")
                yield term


def _term(entry: str, concept: str, language: str, anywhere: bool) -> Term | None:
    fuzzy = entry.startswith("~")
    prefix = entry.endswith("*")
    text = fold(entry.strip("~*"))
    if not text:
        return None
    fuzzy = fuzzy and " " not in text and len(text) >= _FUZZY_MIN
    return Term(text, concept, language, prefix, fuzzy, anywhere)


def _rule(row: Mapping[str, Any], where: str) -> Rule:
    if not isinstance(row, Mapping):
        raise RulesError(f"{where}: must be a table")
    unknown = set(row) - {"name", "action", "all", "any", "none", "in", "sender"}
    if unknown:
        raise RulesError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    name, action = row.get("name"), row.get("action")
    if not isinstance(name, str) or not name:
        raise RulesError(f"{where}: name is required")
    if action not in ACTIONS:
        raise RulesError(f"{where} ({name}): action must be one of {', '.join(ACTIONS)}")
    sender = row.get("sender")
    if sender is not None and sender not in SENDERS:
        raise RulesError(f"{where} ({name}): sender must be one of {', '.join(SENDERS)}")
    in_ = row.get("in", "both")
    if in_ not in WHERE:
        raise RulesError(f"{where} ({name}): in must be one of {', '.join(WHERE)}")
    lists = {key: row.get(key, []) for key in ("all", "any", "none")}
    for key, value in lists.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RulesError(f"{where} ({name}): {key} must be a list of concepts")
    return Rule(
        name,
        action,
        all=tuple(lists["all"]),
        any=tuple(lists["any"]),
        none=tuple(lists["none"]),
        where=in_,
        sender=sender,
    )


@dataclass(frozen=True)
class NearMissVerdict:
    """Whether the mail is a near miss, the rule that said so, and what it matched."""

    near_miss: bool
    rule: str
    language: str | None = None  # the language of the first credential-ish term found
    matched: tuple[str, ...] = ()  # "concept:term", in vocabulary order

    @property
    def explanation(self) -> str:
        return self.rule


def first_lines(text: str) -> str:
    """The first lines the sender wrote (the caller has cut quotes and signatures)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:FIRST_LINES])[:FIRST_CHARS]


def classify_near_miss(
    subject: str, text: str, rules: NearMissRules, sender: Iterable[str] = ()
) -> NearMissVerdict:
    """Walk the rules over the subject and the first lines of `text`.

    `sender` says what credmail knows of the sender: "automated" (list, bulk, robot or
    the school's own mail), "staff" (a teacher, staff member or head on file)."""
    subject_text, body_text = fold(subject), fold(first_lines(text))
    found_subject = _concepts(subject_text, rules.terms)
    found_body = _concepts(body_text, rules.terms)
    found = {
        "subject": set(found_subject),
        "text": set(found_body),
        "both": set(found_subject) | set(found_body),
    }
    matched = tuple(dict.fromkeys(found_subject.get_all() + found_body.get_all()))
    senders = frozenset(sender)
    for rule in rules.rules:
        if rule.holds(found, senders):
            return NearMissVerdict(
                rule.action == "flag", rule.name, _language(matched, rules), matched
            )
    return NearMissVerdict(False, NO_RULE, _language(matched, rules), matched)


class _Found(dict[str, list[str]]):
    def get_all(self) -> list[str]:
        return [f"{concept}:{term}" for concept, terms in self.items() for term in terms]


def _concepts(text: str, terms: Sequence[Term]) -> _Found:
    found = _Found()
    if not text:
        return found
    words = frozenset(text.split())
    for term in terms:
        if term.found_in(text, words):
            found.setdefault(term.concept, []).append(term.text)
    return found


_LANGUAGE_CONCEPTS = ("credentials", "forgot", "access", "ask")


def _language(matched: Sequence[str], rules: NearMissRules) -> str | None:
    """The language most of the matched everyday words belong to (register names are
    shared, so they say nothing); a tie goes to the language listed first."""
    order: dict[str, int] = {}
    by_key: dict[tuple[str, str], set[str]] = {}
    for term in rules.terms:
        if term.language != "common" and term.concept in _LANGUAGE_CONCEPTS:
            order.setdefault(term.language, len(order))
            by_key.setdefault((term.concept, term.text), set()).add(term.language)
    counts: dict[str, int] = {}
    for item in matched:
        concept, _, text = item.partition(":")
        for language in by_key.get((concept, text), ()):
            counts[language] = counts.get(language, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda code: (-counts[code], order[code]))
