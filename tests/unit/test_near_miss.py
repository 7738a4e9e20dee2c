"""The near-miss classifier: rules as data, each decision named, typos, exclusions,
the school's own terms and rules, and one-line errors for malformed rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from credmail.config import ConfigError, load_settings
from credmail.core.near_miss import NO_RULE, classify_near_miss, first_lines, fold
from credmail.near_miss_rules import load_near_miss_rules

RULES = load_near_miss_rules(None)


def test_fold_removes_accents_case_and_punctuation() -> None:
    assert fold("Credențiale, dell'Accesso!") == "credentiale dell accesso"
    assert fold("  ") == ""


@pytest.mark.parametrize(
    ("subject", "body", "rule"),
    [
        ("Password dimenticata registro elettronico", "", "credentials_in_subject"),
        ("", "non riesco ad accedere a ClasseViva, mi aiutate?", "register_access_problem"),
        ("Info", "vorrei la pasword del registro", "credentials_asked"),  # one typo
        ("Info", "mi servono le credeziali", "credentials_asked"),  # one letter missing
        ("Firma sul registro di classe", "ho dimenticato di firmare", "register_use"),
        ("Password del wifi", "qual è la password del wifi?", "wifi_password"),
        ("Credenziali corso di formazione", "non arrivano", "training_platform"),
        ("Accesso all'edificio", "sabato per i lavori", "building_access"),
        ("Assenza", "mio figlio domani è assente", "register_use"),
        ("Saluti", "buone feste a tutti", NO_RULE),
    ],
)
def test_each_decision_is_named_by_the_rule_that_fired(subject: str, body: str, rule: str) -> None:
    verdict = classify_near_miss(subject, body, RULES)
    assert verdict.rule == rule
    assert verdict.near_miss is (rule not in {NO_RULE} and not _excluding(rule))


def _excluding(rule: str) -> bool:
    return next(r.action for r in RULES.rules if r.name == rule) == "exclude"


def test_automated_and_staff_senders() -> None:
    asked = ("Registro", "non riesco ad accedere al registro, mi serve aiuto")
    assert classify_near_miss(*asked, RULES).near_miss
    assert classify_near_miss(*asked, RULES, ["automated"]).rule == "automated_mail"
    assert classify_near_miss(*asked, RULES, ["staff"]).rule == "staff_about_register"
    staff_lost = ("Password registro", "ho dimenticato la password")
    assert classify_near_miss(*staff_lost, RULES, ["staff"]).near_miss


def test_languages_are_recognized() -> None:
    assert classify_near_miss("Mot de passe oublié", "", RULES).language == "fr"
    assert classify_near_miss("", "忘记密码了", RULES).language == "zh"
    assert classify_near_miss("", "نسيت كلمة المرور", RULES).language == "ar"
    assert classify_near_miss("", "забула пароль від журналу", RULES).language == "uk"


def test_only_the_first_lines_are_read() -> None:
    late = "\n".join(["riga"] * 20 + ["ho dimenticato la password del registro"])
    assert not classify_near_miss("Ciao", late, RULES).near_miss
    assert first_lines(" a \n\n b ") == "a\nb"


def test_the_school_adds_terms_and_rules_first() -> None:
    rules = load_near_miss_rules(
        None,
        {"it": {"register": ["portale famiglie"]}},
        [{"name": "pin_mensa", "action": "exclude", "any": ["credentials"], "in": "subject"}],
    )
    assert classify_near_miss(
        "", "non riesco ad accedere al portale famiglie, aiuto", rules
    ).near_miss
    assert classify_near_miss("Password", "", rules).rule == "pin_mensa"


def test_a_replacement_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[vocabulary.it]\nx = ["credenziali"]\n'
        '[[rules]]\nname = "solo"\naction = "flag"\nany = ["x"]\n'
    )
    rules = load_near_miss_rules(path)
    assert classify_near_miss("credenziali", "", rules).rule == "solo"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rules]]\nname = "a"\naction = "maybe"\n', "action must be one of"),
        (
            '[vocabulary.it]\nx = ["y"]\n[[rules]]\nname = "a"\naction = "flag"\nany = ["z"]\n',
            "unknown concept 'z'",
        ),
        ('[vocabulary.it]\nx = "y"\n', "must be a list of strings"),
        ('[[rules]]\nname = "a"\naction = "flag"\ncolour = 1\n', "unknown key 'colour'"),
        ("[[rules]\n", "invalid TOML"),
    ],
)
def test_malformed_rules_say_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as caught:
        load_near_miss_rules(path)
    assert "\n" not in str(caught.value)


def test_the_config_names_a_bad_rule_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "credmail.toml"
    path.write_text(
        '[smtp]\nfrom_address = "s@example.org"\n[links]\nbase_url = "https://r.example.org"\n'
        '[replies]\nschool_name = "X"\n[classify]\nnear_miss = "guide"\n'
        '[[classify.near_miss_rules]]\nname = "mine"\naction = "flag"\nany = ["nessuno"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == (
        "classify: near_miss_rules: rule 'mine': unknown concept 'nessuno'"
    )
    ignored = path.read_text().replace('near_miss = "guide"', 'near_miss = "ignore"')
    path.write_text(ignored)
    assert load_settings(path, environ={}).classify.near_miss == "ignore"


def test_the_run_once_summary_counts_the_near_misses_apart() -> None:
    from credmail.entrypoints.cli import _once_text

    base = {"sent": 0, "retried": 0, "failed": 0, "skipped_requests": 0}
    text = _once_text({**base, "scanned": 5, "handled": {"answered": 1}, "near_misses": 2})
    assert "2 flagged as near misses" in text and "2 left untouched" in text
