"""A Romanian-speaking guardian sets the password against a real slapd with a minimum of
14 characters: the help and each refusal are said in Italian with the Romanian beside
them, with the configured number, and the directory's own refusal too."""

from __future__ import annotations

import re

import pytest

from credmail.bootstrap import App
from credmail.config import load_settings
from tests.support.links import issue_token
from tests.support.slapd import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, USERS, Slapd
from tests.support.wiring import make_app
from tests.web.conftest import ClientFactory, web_env
from tests.web.test_reset_backends import post_password
from tests.web.test_reset_languages import speaks

pytestmark = pytest.mark.integration

ROMANIAN = re.compile(r'<span class="also" lang="ro" dir="ltr">(.*?)</span>')


def problems(html: str) -> str:
    """The list of refusals (each Italian reason with its translation beside it)."""
    return html.split('class="problems"')[1].split("<ul>")[1].split("</ul>")[0]


@pytest.fixture
def ldap_app(sqlite_url: str, slapd: Slapd) -> App:
    env = web_env(
        sqlite_url,
        links__backend="ldap",
        ldap__url=slapd.url,
        ldap__bind_dn=SERVICE_DN,
        ldap__bind_password=SERVICE_PASSWORD,
        ldap__base_dn=PEOPLE,
        ldap__connect_timeout_seconds="2",
        ldap__password_min_length="14",
    )
    app = make_app(load_settings(None, environ=env))
    speaks(app, "G1001", "ro")
    speaks(app, "G1002", "ro")
    return app


def test_the_minimum_and_the_refusals_in_both_languages(
    ldap_app: App, client_for: ClientFactory, slapd: Slapd
) -> None:
    client = client_for(ldap_app)
    token = issue_token(ldap_app, "G1001")
    page = client.get(f"/reset/{token}").text
    assert "Almeno 14 caratteri" in page
    assert "Cel puțin 14 caractere" in page

    refused = problems(post_password(client, token, "Rossi-2026").text)
    assert "La password deve avere almeno 14 caratteri." in refused
    assert ROMANIAN.findall(refused) == [
        "Parola este prea scurtă: numărul minim de caractere este 14.",
        "Parola nu trebuie să conțină prenumele sau numele de familie.",
    ]
    refused = problems(post_password(client, token, "x" * 20, "y" * 20).text)
    assert ROMANIAN.findall(refused) == ["Cele două parole nu coincid."]
    assert slapd.can_bind("G1001", USERS["G1001"][2])


def test_the_directory_s_own_refusal_is_translated(
    ldap_app: App, client_for: ClientFactory
) -> None:
    """G1002 is under a slapd ppolicy wanting 30 characters."""
    client = client_for(ldap_app)
    token = issue_token(ldap_app, "G1002")
    refused = problems(post_password(client, token, "lampone-ventoso-Quaderno-42").text)
    assert ROMANIAN.findall(refused) == [
        "Sistemul școlii nu a acceptat această parolă deoarece nu respectă regulile sale: "
        "alegeți alta, mai lungă și mai variată."
    ]
