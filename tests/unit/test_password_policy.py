"""The reset page's password policy (pure) and the common-passwords list (zxcvbn's)."""

from __future__ import annotations

import hashlib

import pytest

from credmail.adapters.ldap_backend import common_passwords
from credmail.service.password_policy import (
    COMMON,
    HAS_NAME,
    HAS_USERNAME,
    SPACES,
    TOO_LONG,
    TOO_SHORT,
    WEAK,
    PasswordPolicy,
    load_common,
)

POLICY = PasswordPolicy(common=common_passwords())
GOOD = "lampone-ventoso-Quaderno-42"


def problems(password: str, policy: PasswordPolicy = POLICY) -> list[str]:
    return policy.problems(password, username="mrossi", first_name="Mario", last_name="De Rossi")


def test_a_long_unrelated_password_passes() -> None:
    assert problems(GOOD) == []
    assert problems("tramonto sul Monviso, 7 caffè") == []


def test_too_short_names_the_minimum() -> None:
    assert problems("Qz!8vL#2") == [TOO_SHORT.format(n=12)]
    assert problems("tramonto-Monviso", PasswordPolicy(min_length=8)) == []
    assert problems("tramonto-Monviso", PasswordPolicy(min_length=20)) == [TOO_SHORT.format(n=20)]
    assert TOO_SHORT.format(n=12) == "La password deve avere almeno 12 caratteri."


def test_too_long_is_refused() -> None:
    assert TOO_LONG.format(n=128) in problems("Ab3$" * 40)


@pytest.mark.parametrize("password", ["xx-MROSSI-lampone-42", "lampone.mrossi.vento"])
def test_the_username_is_refused_in_any_case(password: str) -> None:
    assert HAS_USERNAME in problems(password)


@pytest.mark.parametrize(
    "password",
    [
        "lampone-MARIO-vento-42",
        "lampone-rossi-vento-42",
        "lampone-derossi-vento",
        "ROSSI2026-lampone",
    ],
)
def test_first_and_last_names_are_refused_case_insensitively(password: str) -> None:
    assert problems(password) == [HAS_NAME]


def test_accents_do_not_hide_a_name() -> None:
    policy = PasswordPolicy()
    found = policy.problems(
        "lampone-NICCOLO-vento-42", username="nrossi", first_name="Niccolò", last_name="Rossi"
    )
    assert found == [HAS_NAME]


def test_short_name_parts_are_not_checked() -> None:
    """A two-letter surname would refuse every password containing, say, 'li'."""
    found = POLICY.problems(GOOD + "li", username="ali", first_name="Wu", last_name="Li")
    assert found == []


def test_common_passwords_are_refused_whatever_the_case() -> None:
    assert "qazwsxedcrfv" in common_passwords()
    assert problems("QazWsxEdcRfv") == [COMMON]
    assert problems("1q2w3e4r5t6y") == [COMMON]


def test_weak_by_zxcvbn_is_refused_with_an_italian_hint() -> None:
    assert problems("aaaaaaaaaaaaaaaa") == [WEAK]
    assert problems("abcdefghijklmnop") == [WEAK]
    assert "facile da indovinare" in WEAK


def test_min_score_is_configurable() -> None:
    lenient = PasswordPolicy(min_score=0)
    assert problems("aaaaaaaaaaaaaaaa", lenient) == []


def test_leading_or_trailing_spaces_are_refused() -> None:
    assert SPACES in problems(" " + GOOD)


def test_several_problems_are_all_listed() -> None:
    assert problems("mario") == [TOO_SHORT.format(n=12), HAS_NAME]


def test_the_shipped_list_has_ten_thousand_entries_and_loads_comments_away() -> None:
    assert len(common_passwords()) == 10_000
    assert "123456" in common_passwords() and "password" in common_passwords()
    # the very list credmail copied to data/common-passwords.txt until zxcvbn's own was used
    listed = "\n".join(sorted(common_passwords())).encode()
    assert hashlib.sha256(listed).hexdigest() == (
        "dc2cb2c7353da0c9f1a03e292f4be7fb0395b5127478c2d1a75ed50c29f00fe1"
    )
    assert load_common(["# comment", "", "Ciao123", "  spazio  "]) == {"ciao123", "spazio"}


def test_the_score_is_told_the_persons_own_words() -> None:
    """zxcvbn knows Mario Rossi already; an unusual name counts as guessable only if told."""
    words = ("zquagliarella", "Zeferino", "Quagliarella")
    assert PasswordPolicy.score("quagliarellazeferino") >= 3
    assert PasswordPolicy.score("quagliarellazeferino", *words) < 3
