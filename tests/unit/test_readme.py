"""The README read as a newcomer reads it: finished sentences, and an install sequence
that works on a clean Debian (issue 10)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def prose_paragraphs() -> list[str]:
    """Paragraphs outside code blocks, tables and lists."""
    outside = re.sub(r"```.*?```", "", README, flags=re.S)
    paragraphs = [p.strip() for p in outside.split("\n\n")]
    return [p for p in paragraphs if p and p[0] not in "#|-`"]


def install_block() -> str:
    section = README.split("## Using it for real", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def test_no_line_is_repeated_and_every_paragraph_closes_its_parentheses() -> None:
    lines = README.splitlines()
    repeated = [a for a, b in itertools.pairwise(lines) if a.strip() and a == b]
    assert repeated == []
    for paragraph in prose_paragraphs():
        assert paragraph.count("(") == paragraph.count(")"), paragraph
        assert paragraph.rstrip()[-1] in ".:)", paragraph


def test_the_install_installs_sudo_before_the_wrapper_uses_it() -> None:
    block = install_block()
    apt = next(line for line in block.splitlines() if line.startswith("apt-get install"))
    assert "exec sudo -u credmail" in block
    assert "sudo" in apt.split()


def test_the_sudoers_rule_allows_exactly_what_the_wrapper_runs() -> None:
    wrapper = next(line for line in install_block().splitlines() if "exec sudo" in line)
    command = wrapper.split("exec sudo -u credmail ", 1)[1].split()[0]
    assert command == "/opt/credmail/bin/credmail"  # not `env`, which would allow anything
    assert f"%credmail-staff ALL=(credmail) NOPASSWD: {command}" in README
    assert "SUDO_USER" in README


def test_the_state_directory_exists_before_any_command_needs_it() -> None:
    lines = install_block().splitlines()
    made = lines.index(
        next(line for line in lines if line.startswith("install -d -m 0700 -o credmail"))
    )
    assert lines[made].split("#")[0].split()[-1] == "/var/lib/credmail"
    first_use = next(i for i, line in enumerate(lines) if line.startswith("credmail "))
    assert made < first_use
    assert any(line.startswith("adduser") for line in lines[:made])


def test_the_example_config_says_who_decides() -> None:
    example = (ROOT / "config" / "credmail.example.toml").read_text()
    review = example.split("[review]", 1)[1].split("staff =", 1)[0]
    assert "OS user" in review and "sudo" in review
    assert "--by is only a note" in review
