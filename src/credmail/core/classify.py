"""Classify a subject line by walking an ordered table of phrase rules (policy as data)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from credmail.core.values import Classification, RequestKind

_QUOTES = "\"'“”«»‘’„‟‹›"
_SPACES = re.compile(r"\s+")
_PREFIX_SEPARATORS = ":"


def normalize_text(text: str) -> str:
    """NFKC, casefold, collapse whitespace, strip surrounding quotes."""
    folded = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
    return folded.strip(_QUOTES + " ")


@dataclass(frozen=True)
class SubjectRule:
    """A phrase that, at the start of a subject, makes it a request of `kind`."""

    phrase: str
    kind: RequestKind


@dataclass(frozen=True)
class SubjectRules:
    """The ordered rule table plus the reply/forward prefixes that force review."""

    rules: tuple[SubjectRule, ...]
    reply_prefixes: tuple[str, ...]
    ignored_tags: tuple[str, ...] = ()
    spam_tags: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        student_phrases: Iterable[str],
        adult_phrases: Iterable[str],
        reply_prefixes: Iterable[str],
        ignored_tags: Iterable[str] | None = None,
        spam_tags: Iterable[str] | None = None,
    ) -> SubjectRules:
        """Longest phrase first, so a phrase never shadows a longer one it is a prefix of."""
        rules = [SubjectRule(normalize_text(p), RequestKind.STUDENT) for p in student_phrases]
        rules += [SubjectRule(normalize_text(p), RequestKind.ADULT) for p in adult_phrases]
        rules.sort(key=lambda rule: len(rule.phrase), reverse=True)
        prefixes = tuple(normalize_text(p).rstrip(_PREFIX_SEPARATORS) for p in reply_prefixes)
        ignored = DEFAULT_IGNORED_SUBJECT_TAGS if ignored_tags is None else ignored_tags
        spam = DEFAULT_SPAM_SUBJECT_TAGS if spam_tags is None else spam_tags
        return cls(tuple(rules), prefixes, _tags(ignored), _tags(spam))


DEFAULT_STUDENT_PHRASES = ("richiesta credenziali studente",)
DEFAULT_ADULT_PHRASES = ("richiesta credenziali",)
DEFAULT_REPLY_PREFIXES = ("re", "r", "risposta", "i", "fwd", "fw", "inoltro", "aw", "wg", "rif")
DEFAULT_IGNORED_SUBJECT_TAGS = ("[EXTERNAL]", "[ESTERNO]", "[EXT]", "[External]")
DEFAULT_SPAM_SUBJECT_TAGS = ("***SPAM***", "[SPAM]", "[POSSIBILE SPAM]")
# What Italian PEC providers write before the original subject (normalized).
PEC_ENVELOPE_PREFIXES = ("posta certificata",)
PEC_RECEIPT_PREFIXES = (
    "accettazione",
    "consegna",
    "avvenuta consegna",
    "avviso di non accettazione",
    "avviso di mancata consegna",
    "anomalia messaggio",
    "presa in carico",
)
_PEC_PREFIXES = (("envelope", PEC_ENVELOPE_PREFIXES), ("receipt", PEC_RECEIPT_PREFIXES))


def _tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Normalized, longest first, so '[EXT]' never shadows '[EXTERNAL]'."""
    found = {normalize_text(tag) for tag in tags} - {""}
    return tuple(sorted(found, key=len, reverse=True))


def default_rules() -> SubjectRules:
    return SubjectRules.build(
        DEFAULT_STUDENT_PHRASES, DEFAULT_ADULT_PHRASES, DEFAULT_REPLY_PREFIXES
    )


def classify_subject(subject: str, rules: SubjectRules) -> Classification:
    """Match the decoded subject against the rules; prefixes such as 'Re:', gateway tags
    such as '[EXTERNAL]', spam tags and the PEC provider's prefixes are peeled first."""
    peeled = _peel(normalize_text(subject), rules)
    for rule in rules.rules:
        rest = _match(peeled.text, rule.phrase)
        if rest is not None:
            return Classification(
                rule.kind,
                True,
                reply_prefix=peeled.reply_prefix,
                rest=rest,
                ignored_tags=peeled.ignored_tags,
                spam_tag=peeled.spam_tag,
                pec=peeled.pec,
            )
    return Classification(RequestKind.UNKNOWN, False)


@dataclass(frozen=True)
class _Peeled:
    text: str
    reply_prefix: bool = False
    ignored_tags: tuple[str, ...] = ()
    spam_tag: bool = False
    pec: str | None = None


def _peel(text: str, rules: SubjectRules) -> _Peeled:
    """Strip tags (at either end), PEC prefixes and reply prefixes, in any order."""
    found = _Peeled(text)
    while True:
        step = _peel_once(found, rules)
        if step == found:
            return found
        found = step


def _peel_once(found: _Peeled, rules: SubjectRules) -> _Peeled:
    text = found.text
    for tag in (*rules.ignored_tags, *rules.spam_tags):
        rest = _strip_tag(text, tag)
        if rest is not None:
            if tag in rules.spam_tags:
                return replace(found, text=rest, spam_tag=True)
            return replace(found, text=rest, ignored_tags=(*found.ignored_tags, tag))
    head, sep, tail = text.partition(":")
    if sep and found.pec is None:
        for kind, prefixes in _PEC_PREFIXES:
            if head.strip() in prefixes:
                return replace(found, text=tail.strip(" " + _QUOTES), pec=kind)
    stripped, had_prefix = _strip_prefixes(text, rules.reply_prefixes)
    if had_prefix:
        return replace(found, text=stripped, reply_prefix=True)
    return found


def _strip_tag(text: str, tag: str) -> str | None:
    """The text without `tag` at its start or end, or None when it is not there."""
    if text.startswith(tag) and (len(text) == len(tag) or _bounded(tag[-1], text[len(tag)])):
        return text[len(tag) :].strip(" -:" + _QUOTES)
    if text.endswith(tag) and len(text) > len(tag) and _bounded(tag[0], text[-len(tag) - 1]):
        return text[: -len(tag)].strip(" -:" + _QUOTES)
    return None


def _bounded(edge: str, neighbour: str) -> bool:
    return not (edge.isalnum() and neighbour.isalnum())


def _match(text: str, phrase: str) -> str | None:
    if text == phrase:
        return ""
    if text.startswith(phrase) and not text[len(phrase)].isalnum():
        return text[len(phrase) :].strip(" -–—:,;." + _QUOTES)
    return None


def _strip_prefixes(text: str, prefixes: Sequence[str]) -> tuple[str, bool]:
    had_prefix = False
    while True:
        head, sep, tail = text.partition(":")
        if not sep or _base_prefix(head) not in prefixes:
            return text, had_prefix
        text, had_prefix = tail.strip(" " + _QUOTES), True


def _base_prefix(head: str) -> str:
    """'re', 're[2]', 're(3)' and 'r ' all reduce to the bare prefix word."""
    return re.sub(r"[\[(]\d+[\])]$", "", head.strip())
