"""The reset page and its outcome pages follow the mail's rule (issue 19): Italian first,
then the recipient's language (`lang` and `dir` on the translated section), a language
switch of plain links, and Italian only when a translation is missing or broken."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from sqlalchemy import update
from starlette.testclient import TestClient

from credmail.adapters.db.models import PersonRow
from credmail.bootstrap import App
from credmail.config import load_settings
from tests.support.links import issue_token
from tests.support.wiring import make_app
from tests.web.conftest import ClientFactory, web_env

SECTION = re.compile(r'<section class="translation" lang="([a-z]+)" dir="(ltr|rtl)"')


def speaks(app: App, username: str, language: str | None) -> None:
    with app.uow() as uow:
        uow.session.execute(
            update(PersonRow).where(PersonRow.username == username).values(language=language)
        )
        uow.commit()


def sections(html: str) -> list[tuple[str, str]]:
    return SECTION.findall(html)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_the_guardians_language_follows_the_italian_right_to_left(
    web_app: App, client: TestClient
) -> None:
    speaks(web_app, "G1001", "ar")
    token = issue_token(web_app, "G1001")
    page = client.get(f"/reset/{token}")
    html = page.text
    assert page.status_code == 200
    assert '<html lang="it">' in html
    assert sections(html) == [("ar", "rtl")]
    assert html.index("<h1>Conferma la richiesta di credenziali</h1>") < html.index(
        '<section class="translation"'
    )
    assert "تأكيد طلب بيانات الدخول" in html
    assert "<bdi><strong>G1001</strong></bdi>" in html
    # The button follows both texts and is labelled in both languages.
    assert html.index('<section class="translation"') < html.index("<form")
    assert (
        '<button type="submit">Conferma<span class="also" lang="ar" dir="rtl">'
        "تأكيد الطلب</span></button>"
    ) in html
    assert '<form method="post" action="?lang=ar">' in html
    # The switch: plain links, Italian first, the current one marked; no script.
    assert '<a href="?lang=it" lang="it" hreflang="it">Italiano</a>' in html
    assert '<a href="?lang=ar" lang="ar" hreflang="ar" aria-current="page">العربية</a>' in html
    assert html.count('href="?lang=') == 9
    assert "<script" not in html

    done = client.post(f"/reset/{token}?lang=ar", data={"csrf_token": csrf_of(html)})
    assert done.status_code == 200
    assert "<h1>Richiesta confermata</h1>" in done.text
    assert sections(done.text) == [("ar", "rtl")]
    assert "تم تأكيد الطلب" in done.text

    used = client.get(f"/reset/{token}")  # an invalid link names nobody: Italian only...
    assert "Collegamento già usato" in used.text and sections(used.text) == []
    used = client.get(f"/reset/{token}?lang=ar")  # ...unless the visitor picks a language
    assert sections(used.text) == [("ar", "rtl")] and "الرابط مستخدم من قبل" in used.text


def test_the_switch_chooses_another_language_or_italian_only(
    web_app: App, client: TestClient
) -> None:
    speaks(web_app, "G1001", "ro")
    token = issue_token(web_app, "G1001")
    assert sections(client.get(f"/reset/{token}").text) == [("ro", "ltr")]
    assert sections(client.get(f"/reset/{token}?lang=zh").text) == [("zh", "ltr")]
    only = client.get(f"/reset/{token}?lang=it").text
    assert sections(only) == []
    assert '<a href="?lang=it" lang="it" hreflang="it" aria-current' in only
    odd = client.get(f"/reset/{token}?lang=%3Cscript%3E").text  # unknown codes are ignored
    assert sections(odd) == [("ro", "ltr")] and "&lt;script" not in odd and "<script" not in odd


def test_no_language_on_file_means_italian_with_the_switch(
    web_app: App, client: TestClient
) -> None:
    token = issue_token(web_app, "G1001")
    html = client.get(f"/reset/{token}").text
    assert sections(html) == []
    assert '<span class="also"' not in html
    assert '<button type="submit">Conferma</button>' in html
    assert 'href="?lang=ro"' in html


def test_a_broken_page_translation_leaves_the_page_in_italian(
    tmp_path: Path, sqlite_url: str, client_for: ClientFactory
) -> None:
    school = tmp_path / "templates"
    (school / "i18n" / "ro").mkdir(parents=True)
    (school / "i18n" / "ro" / "reset_confirm.html").write_text("{{ view.no_such_field.x }}")
    env = web_env(sqlite_url, replies__templates_dir=str(school))
    app = make_app(load_settings(None, environ=env))
    speaks(app, "G1001", "ro")
    token = issue_token(app, "G1001")
    page = client_for(app).get(f"/reset/{token}")
    assert page.status_code == 200
    assert sections(page.text) == []
    assert '<button type="submit">Conferma</button>' in page.text


def test_the_not_found_page_follows_an_explicit_choice(client: TestClient) -> None:
    page = client.get("/nowhere?lang=uk")
    assert page.status_code == 404
    assert "<h1>Pagina non trovata</h1>" in page.text
    assert sections(page.text) == [("uk", "ltr")] and "Сторінку не знайдено" in page.text
    assert sections(client.get("/nowhere").text) == []


def test_the_last_resort_page_follows_an_explicit_choice(
    web_app: App, client_for: ClientFactory
) -> None:
    class Broken:
        needs_password = False

        def look(self, token: str) -> None:
            raise RuntimeError("database gone")

    web_app.desks = dataclasses.replace(web_app.desks, reset=Broken())  # type: ignore[arg-type]
    client = TestClient(client_for(web_app).app, raise_server_exceptions=True)
    page = client.get("/reset/abc.def?lang=ar")
    assert page.status_code == 503 and "<h1>Riprovi più tardi</h1>" in page.text
    assert sections(page.text) == [("ar", "rtl")] and "الخدمة غير متاحة" in page.text
    assert sections(client.get("/reset/abc.def").text) == []
