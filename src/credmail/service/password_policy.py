"""The password policy of the reset page (the `ldap` backend): pure, no I/O.

A new password is refused, with Italian reasons shown to the family, when it is
shorter than `min_length`, contains the username or the person's first or last name
(case-insensitive, accents ignored), is among the common passwords shipped with
credmail, or scores below `min_score` on zxcvbn's strength estimate (0..4).
The list of common passwords is handed in (the adapter reads the package data).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from zxcvbn import zxcvbn

MAX_LENGTH = 128  # Active Directory accepts up to 256; nobody types more on a phone
ZXCVBN_MAX_INPUT = 72  # zxcvbn refuses longer input; the first 72 characters decide
MIN_NAME_PART = 3  # "Li", "Ng": shorter name parts would refuse too much

TOO_SHORT = "La password deve avere almeno {n} caratteri."
TOO_LONG = "La password può avere al massimo {n} caratteri."
HAS_USERNAME = "La password non deve contenere il nome utente."
HAS_NAME = "La password non deve contenere il nome o il cognome."
COMMON = "Questa password è tra le più usate, quindi facile da indovinare: ne scelga un'altra."
WEAK = (
    "La password è troppo facile da indovinare. Usi più parole poco comuni, "
    "magari unite da numeri o simboli."
)
SPACES = "La password non deve iniziare o finire con uno spazio."
BOTH_FIELDS = "Scriva la nuova password in entrambe le caselle."
MISMATCH = "Le due password non coincidono."
DIRECTORY_REFUSED = (
    "Il sistema della scuola non ha accettato questa password perché non rispetta le sue "
    "regole: ne scelga un'altra, più lunga e più varia."
)
# Every reason the page can show, by code: a translated page section says each as
# `problem_<code>` (with {n} where the Italian has a number).
PROBLEM_CODES = (
    "too_short",
    "too_long",
    "spaces",
    "has_username",
    "has_name",
    "common",
    "weak",
    "both_fields",
    "mismatch",
    "directory_refused",
)


class Problem(str):
    """One reason, in Italian, with its `code` and `n` (a length) so that a translated
    page can say it in the family's language too (`problem_<code>` strings)."""

    code: str
    n: int | None

    def __new__(cls, template: str, code: str, n: int | None = None) -> Problem:
        problem = super().__new__(cls, template.format(n=n) if n is not None else template)
        problem.code, problem.n = code, n
        return problem


def _fold(text: str) -> str:
    """Lowercase without accents: 'Niccolò' and 'NICCOLO' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _name_parts(*names: str) -> set[str]:
    parts: set[str] = set()
    for name in names:
        folded = _fold(name)
        words = [w for w in folded.replace("'", " ").replace("-", " ").split() if w]
        parts.update(w for w in words if len(w) >= MIN_NAME_PART)
        joined = "".join(words)  # "De Luca" -> "deluca"
        if len(joined) >= MIN_NAME_PART:
            parts.add(joined)
    return parts


def load_common(lines: Iterable[str]) -> frozenset[str]:
    """The common-passwords set from a text list: one a line, '#' comments."""
    return frozenset(
        _fold(line.strip()) for line in lines if line.strip() and not line.startswith("#")
    )


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    min_score: int = 3
    common: frozenset[str] = field(default=frozenset(), repr=False)

    def problems(
        self, password: str, *, username: str, first_name: str = "", last_name: str = ""
    ) -> list[str]:
        """Italian reasons to refuse `password`, in the order the family should read them."""
        found: list[str] = []
        if len(password) < self.min_length:
            found.append(Problem(TOO_SHORT, "too_short", self.min_length))
        if len(password) > MAX_LENGTH:
            found.append(Problem(TOO_LONG, "too_long", MAX_LENGTH))
        if password != password.strip():
            found.append(Problem(SPACES, "spaces"))
        folded = _fold(password)
        user = _fold(username.strip())
        if len(user) >= MIN_NAME_PART and user in folded:
            found.append(Problem(HAS_USERNAME, "has_username"))
        if any(part in folded for part in _name_parts(first_name, last_name)):
            found.append(Problem(HAS_NAME, "has_name"))
        if folded in self.common:
            found.append(Problem(COMMON, "common"))
        elif not found and self.score(password, username, first_name, last_name) < self.min_score:
            found.append(Problem(WEAK, "weak"))
        return found

    @staticmethod
    def score(password: str, *user_inputs: str) -> int:
        """zxcvbn's 0..4 estimate, told the person's own words (they count as guessable)."""
        if not password:
            return 0
        inputs = [w for w in user_inputs if w]
        result = zxcvbn(password[:ZXCVBN_MAX_INPUT], user_inputs=inputs)
        return int(result["score"])
