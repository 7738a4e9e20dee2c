"""Classify a subject line by walking an ordered table of phrase rules (policy as data)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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

    @classmethod
    def build(
        cls,
        student_phrases: Iterable[str],
        adult_phrases: Iterable[str],
        reply_prefixes: Iterable[str],
    ) -> SubjectRules:
        """Longest phrase first, so a phrase never shadows a longer one it is a prefix of."""
        rules = [SubjectRule(normalize_text(p), RequestKind.STUDENT) for p in student_phrases]
        rules += [SubjectRule(normalize_text(p), RequestKind.ADULT) for p in adult_phrases]
        rules.sort(key=lambda rule: len(rule.phrase), reverse=True)
        prefixes = tuple(normalize_text(p).rstrip(_PREFIX_SEPARATORS) for p in reply_prefixes)
        return cls(tuple(rules), prefixes)


DEFAULT_STUDENT_PHRASES = ("richiesta credenziali studente",)
DEFAULT_ADULT_PHRASES = ("richiesta credenziali",)
DEFAULT_REPLY_PREFIXES = ("re", "r", "risposta", "i", "fwd", "fw", "inoltro", "aw", "wg", "rif")


def default_rules() -> SubjectRules:
    return SubjectRules.build(
        DEFAULT_STUDENT_PHRASES, DEFAULT_ADULT_PHRASES, DEFAULT_REPLY_PREFIXES
    )


def classify_subject(subject: str, rules: SubjectRules) -> Classification:
    """Match the decoded subject against the rules; prefixes such as 'Re:' are peeled first."""
    text, had_prefix = _strip_prefixes(normalize_text(subject), rules.reply_prefixes)
    for rule in rules.rules:
        rest = _match(text, rule.phrase)
        if rest is not None:
            return Classification(rule.kind, True, reply_prefix=had_prefix, rest=rest)
    return Classification(RequestKind.UNKNOWN, False)


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
