"""deptry's configuration ([tool.deptry] in pyproject.toml) holds: the shipped code imports only
what it declares, and a planted undeclared or test-only import fails the check."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def deptry(project: Path, *roots: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deptry", *roots, "--no-ansi"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_shipped_code_declares_what_it_imports() -> None:
    result = deptry(ROOT, "src", "migrations")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("planted", "code"),
    [
        ("import certifi", "DEP003"),  # installed (by requests), not declared
        ("import hypothesis", "DEP004"),  # the test extra's, not the daemon's
    ],
)
def test_a_planted_import_fails(tmp_path: Path, planted: str, code: str) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    package = tmp_path / "src" / "credmail"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""planted"""\n')
    (package / "planted.py").write_text(f"{planted}\nimport requests\nimport markupsafe\n")
    result = deptry(tmp_path, "src")
    assert result.returncode == 1
    assert f"{code} '{planted.split()[1]}'" in result.stdout + result.stderr


def test_the_ldap_backend_imports_ldap3_without_a_warning() -> None:
    """ldap3 2.9.1 on the pinned pyasn1: the aliases it imports still exist (an ImportError
    here means pyasn1 dropped them: time for python-ldap), and no warning reaches the logs."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import credmail.adapters.ldap_backend"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_every_python_package_is_listed_for_the_wheel() -> None:
    """[tool.setuptools] packages is a list: a package left out is missing from the
    README's install and the image (the editable install of the tests does not notice)."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(settings["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT / "src").parts)
        for init in (ROOT / "src" / "credmail").rglob("__init__.py")
    }
    assert found - listed == set()
