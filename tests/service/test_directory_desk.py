"""The directory desk: dry run reports the difference, large prunes need --force."""

from __future__ import annotations

import pytest

from credmail.samples import directory_csv
from credmail.service.directory_csv import DirectoryError
from tests.service.conftest import CLERK, ROME, Office

HEADER = "role,username,first_name,last_name,birth_date,emails,students,class\n"


def _today(office: Office) -> bytes:
    return directory_csv(office.clock().astimezone(ROME).date())


def test_a_dry_run_reports_the_difference_and_writes_nothing(office: Office) -> None:
    data = _today(office).replace(b"Giovanna", b"Gianna")
    data += b"teacher,T3002,Nuova,Docente,,nuova@example.org,,\n"
    result = office.directory.import_csv(data, CLERK, prune=False, dry_run=True)
    summary = result.summary
    assert (summary.added, summary.updated, summary.unchanged) == (1, 1, 10)
    assert result.written is False
    assert "T3002" not in office.uow.store.people
    assert office.directory.person("T3001").first_name == "Giovanna"
    done = office.directory.import_csv(data, CLERK, prune=False, dry_run=False)
    assert done.written is True
    assert office.directory.person("T3002").emails == ("nuova@example.org",)


def test_a_prune_of_too_many_is_refused_without_force(office: Office) -> None:
    small = (HEADER + "teacher,T3001,Giovanna,Esposito,,g.esposito@example.org,,\n").encode()
    refused = office.directory.import_csv(small, CLERK, prune=True, dry_run=False)
    assert refused.refusal is not None and "refusing to remove 10 of 11" in refused.refusal
    assert refused.written is False
    assert len(office.directory.people()) == 11
    forced = office.directory.import_csv(small, CLERK, prune=True, dry_run=False, force=True)
    assert forced.written is True and forced.summary.removed == 10
    assert [p.username for p in office.directory.people()] == ["T3001"]


def test_a_bad_file_changes_nothing(office: Office) -> None:
    bad = (HEADER + "guardian,G9,Ada,Neri,,ada@example.org,S404,\n").encode()
    with pytest.raises(DirectoryError):
        office.directory.import_csv(bad, CLERK, prune=False, dry_run=False)
    assert "G9" not in office.uow.store.people


def test_search_matches_username_name_and_address_in_any_case(office: Office) -> None:
    assert [p.username for p in office.directory.search("bianchi")] == [
        "G1002",
        "G1003",
        "S2002",
        "S2003",
    ]
    assert [p.username for p in office.directory.search("G.ESPOSITO@")] == ["T3001"]
    assert office.directory.search("  ") == []
