"""Inputs at the edges, found by an adversarial review: each crashed or misread before."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pyotp

from credmail.core.values import Person, Role
from credmail.service.csv_export import CsvWriter
from credmail.service.desks.sign_in_rules import totp_step, wait_text
from credmail.service.directory_csv import CHUNK, detect_encoding
from credmail.service.links import directory_state
from credmail.service.presentation import mail_date

ROME = ZoneInfo("Europe/Rome")


def test_a_windows_1252_file_whose_first_accent_comes_late_is_read_as_windows_1252() -> None:
    head = b"role,username,first_name,last_name,birth_date,emails,students\n"
    filler = b"teacher,T%d,Anna,Riva,,a%d@example.org,\n"
    rows = b"".join(filler % (n, n) for n in range(CHUNK // len(filler) + 50))
    late = head + rows + "teacher,T9,Nicolò,Neri,,n@example.org,\n".encode("cp1252")
    assert late.index(b"\xf2") > CHUNK  # past the first chunk
    assert detect_encoding(late) == "cp1252"
    assert detect_encoding(head + "Città".encode("cp1252")) == "cp1252"  # a last byte à


def test_a_totp_code_in_full_width_digits_is_read_and_garbage_is_refused() -> None:
    secret = pyotp.random_base32()
    now = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
    code = pyotp.TOTP(secret).at(now)
    wide = "".join(chr(ord(d) + 0xFEE0) for d in code)  # "１２３…"
    assert totp_step(secret, wide, now) == totp_step(secret, code, now) is not None
    assert totp_step(secret, "ǅ€½", now) is None


def test_the_lockout_message_agrees_with_its_number() -> None:
    assert wait_text(1).endswith("tra 1 secondo")
    assert wait_text(60).endswith("tra 1 minuto")
    assert wait_text(61).endswith("tra 2 minuti")


def test_a_date_header_at_the_end_of_time_is_shown_as_written() -> None:
    value = "Fri, 31 Dec 9999 23:30:00 +0000"
    assert mail_date(value, ROME) == value


def test_a_person_with_an_address_that_has_no_key_can_still_get_a_link() -> None:
    person = Person(
        "G1", Role.GUARDIAN, "Mario", "Rossi", date(1980, 1, 1), ("mario@☃.net", "m@example.org")
    )
    assert len(directory_state(person)) == 64


def test_a_cell_with_the_other_separator_stays_one_cell_in_either_dialect() -> None:
    out = io.StringIO()
    CsvWriter(out).writerow(["x;=cmd|' /C calc'!A0", "a,=1+1"])
    line = out.getvalue()
    for delimiter in (",", ";"):
        (cells,) = list(csv.reader(io.StringIO(line), delimiter=delimiter))
        assert not any(cell.startswith("=") for cell in cells)


def test_the_run_once_summary_counts_what_it_left_untouched() -> None:
    from credmail.entrypoints.cli import _once_text

    base = {"sent": 4, "retried": 0, "failed": 0, "skipped_requests": 0}
    text = _once_text({**base, "scanned": 8, "handled": {"answered": 4, "review": 3}})
    assert text.startswith("scanned 8 messages (4 answered, 3 review, 1 left untouched:")
    first = _once_text({**base, "scanned": 0, "handled": {}, "skipped_requests": 1})
    assert first.startswith("no new message;") and "first start: 1 request" in first
