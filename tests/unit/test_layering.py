"""The layering contracts (`[tool.importlinter]` in pyproject.toml, run by `lint-imports`)
hold, and fail on each planted breach.

Each breach is planted into a copy of the package in a temporary directory and
`lint-imports` runs over the copy: it must name the contract broken (and keep every
contract on the unmodified copy). What the contracts cannot say stays here: core imports
only the standard library and idna (a forbidden list cannot name "everything else").
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import credmail

SRC = Path(credmail.__file__).parent
PYPROJECT = SRC.parents[1] / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CORE_LIBRARIES = ("idna",)  # pure Python, no I/O, no state (see core/addresses.py)

LAYERS = "Layers: entry points > web"
NO_CYCLES = "No import circles among the modules of any package"
ADAPTERS = (
    "Only the composition roots (bootstrap, backups) and the adapters import credmail.adapters"
)
IO = "I/O libraries only in the adapters, the web and the composition root"
WEB = "The web uses App and its desks: no runner, database or mail library"
CORE = "Core: no state, no I/O, no dynamic import"
SERVICE = "Service never imports entry points, runners, the web or the adapters"

CONTRACTS = (LAYERS, NO_CYCLES, ADAPTERS, IO, WEB, CORE, SERVICE)

# (files to add, relative to the package: their source) -> the contract that must break
BREACHES: dict[str, tuple[dict[str, str], str]] = {
    "httpx in service": ({"service/planted.py": "import httpx\n"}, IO),
    "ldap3 in service, lazily": ({"service/planted.py": "def f():\n    import ldap3\n"}, IO),
    "starlette in service": ({"service/planted.py": "from starlette import routing\n"}, IO),
    "sqlalchemy in a runner": ({"runners/planted.py": "from sqlalchemy import Engine\n"}, IO),
    "imapclient in diagnostics": ({"diagnostics.py": "import imapclient\n"}, IO),
    "socket in config": ({"config.py": "import socket\n"}, IO),
    "sqlalchemy in the web": ({"web/planted.py": "import sqlalchemy\n"}, WEB),
    "adapters import bootstrap": (
        {"adapters/planted.py": "from credmail import bootstrap\n"},
        LAYERS,
    ),
    "adapters import a runner": (
        {"adapters/planted.py": "from credmail.runners import backoff\n"},
        LAYERS,
    ),
    "an entry point imports an adapter": (
        {"entrypoints/planted.py": "from credmail.adapters import smtp\n"},
        ADAPTERS,
    ),
    "the web imports an adapter": (
        {"web/planted.py": "from credmail.adapters.db import uow\n"},
        ADAPTERS,
    ),
    "a runner imports an adapter": (
        {"runners/planted.py": "from credmail.adapters import imap\n"},
        ADAPTERS,
    ),
    "importlib.import_module in core": (
        {"core/planted.py": "import importlib\n\nMOD = importlib.import_module('json')\n"},
        CORE,
    ),
    "core imports service": ({"core/planted.py": "from credmail.service import ports\n"}, LAYERS),
    "service imports the web": ({"service/planted.py": "from credmail.web import app\n"}, SERVICE),
    "a cycle in core": (
        {
            "core/planted_a.py": "from credmail.core import planted_b\n",
            "core/planted_b.py": "from credmail.core import planted_a\n",
        },
        NO_CYCLES,
    ),
    "a cycle through the web's context": (
        {"web/context.py": "from credmail.web import app\n"},
        NO_CYCLES,
    ),
    "a top-level module no layer names": ({"planted.py": "X = 1\n"}, LAYERS),
}


def _copy(target: Path) -> Path:
    """The package's Python files and the contracts, as a tree lint-imports reads."""
    shutil.copytree(SRC, target / "src" / "credmail", ignore=_not_python)
    shutil.copy(PYPROJECT, target / "pyproject.toml")
    return target


def _not_python(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if not n.endswith(".py") and not (Path(directory) / n).is_dir()}


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}  # the copy, not the installed tree
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _status(output: str, contract: str) -> str:
    """KEPT or BROKEN: the summary line of `contract` (lint-imports wraps long names)."""
    flat = " ".join(output.split())
    rest = flat[flat.index(contract) :]
    kept, broken = rest.find(" KEPT"), rest.find(" BROKEN")
    return "BROKEN" if broken != -1 and (kept == -1 or broken < kept) else "KEPT"


def test_the_contracts_hold_on_the_unmodified_copy(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(_status(result.stdout, name) == "KEPT" for name in CONTRACTS), result.stdout


@pytest.mark.parametrize("case", sorted(BREACHES))
def test_a_planted_breach_fails_its_contract(tmp_path: Path, case: str) -> None:
    files, contract = BREACHES[case]
    tree = _copy(tmp_path)
    for name, source in files.items():
        path = tree / "src" / "credmail" / name
        path.write_text(path.read_text() + source if path.exists() else source)
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _status(result.stdout, contract) == "BROKEN", result.stdout


# What the contracts cannot say: core's only library is idna (a whitelist, read from source).


def _module_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
    return found


def _outside_core(names: set[str]) -> list[str]:
    def allowed(name: str) -> bool:
        top = name.partition(".")[0]
        core = name == "credmail.core" or name.startswith("credmail.core.")
        return top in sys.stdlib_module_names or top in (*CORE_LIBRARIES, "__future__") or core

    return sorted(name for name in names if not allowed(name))


@pytest.mark.parametrize("path", sorted((SRC / "core").rglob("*.py")), ids=lambda p: p.stem)
def test_core_imports_only_the_standard_library_and_idna(path: Path) -> None:
    assert _outside_core(_module_imports(path)) == []


def test_the_core_check_catches_a_library(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text("import email.policy\nimport idna\ndef f():\n    import structlog\n")
    assert _outside_core(_module_imports(planted)) == ["structlog"]
