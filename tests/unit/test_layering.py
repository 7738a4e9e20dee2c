"""The layering contract, read from the source (every import, lazy ones included).

- `credmail.core` imports only the standard library, `credmail.core` and the pure
  libraries named in CORE_LIBRARIES (`idna`: IDNA 2008, which the standard library lacks);
- `credmail.service` imports no adapter, entry point, runner or bootstrap, and no I/O library;
- `credmail.entrypoints` imports no adapter and no mail library (only bootstrap wires adapters);
- `credmail.web` (an entry point: the reset page, the console) likewise, and no database
  library: it uses `App` and its desks;
- `credmail.adapters` imports no entry point.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import credmail

SRC = Path(credmail.__file__).parent

MAIL_LIBRARIES = ("imapclient", "aiosmtplib", "aiosmtpd", "dkim", "dns", "authres")
IO_LIBRARIES = (*MAIL_LIBRARIES[:-1], "sqlalchemy", "psycopg", "alembic")
IO_STDLIB = ("imaplib", "smtplib", "socket", "ssl")
CORE_LIBRARIES = ("idna",)  # pure Python, no I/O, no state (see core/addresses.py)

# Rules: (layer, forbidden import prefixes); core is checked against the standard library.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "credmail.service": (
        "credmail.adapters",
        "credmail.entrypoints",
        "credmail.runners",
        "credmail.bootstrap",
        "credmail.web",
        *IO_LIBRARIES,
        *IO_STDLIB,
    ),
    "credmail.entrypoints": ("credmail.adapters", *MAIL_LIBRARIES),
    "credmail.web": ("credmail.adapters", "credmail.runners", *IO_LIBRARIES, *IO_STDLIB),
    "credmail.adapters": ("credmail.entrypoints", "credmail.web"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(module: str, source: str, is_package: bool = False) -> Iterator[str]:
    """Every module `module` imports, anywhere in its body, as an absolute dotted name."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    found: set[str] = set()
    for name in imports(module, source, is_package):
        if _within(module, "credmail.core"):
            top = name.partition(".")[0]
            allowed = top == "__future__" or top in sys.stdlib_module_names
            allowed = allowed or top in CORE_LIBRARIES or _within(name, "credmail.core")
            if not allowed:
                found.add(name)
            continue
        for layer, forbidden in FORBIDDEN.items():
            if _within(module, layer) and any(_within(name, bad) for bad in forbidden):
                found.add(name)
    # `from a.b import c` yields both a.b and a.b.c: report the module, not its attribute
    found = {name for name in found if name.rpartition(".")[0] not in found}
    return sorted(found)


def all_modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_the_source_is_found() -> None:
    names = {module_name(path) for path in all_modules()}
    assert {"credmail.core.decide", "credmail.service.inbox_sync", "credmail.bootstrap"} <= names


@pytest.mark.parametrize("path", all_modules(), ids=lambda path: module_name(path))
def test_module_respects_the_layers(path: Path) -> None:
    module = module_name(path)
    assert violations(module, path.read_text(), path.name == "__init__.py") == []


# The checker itself, on synthetic modules: it must catch what it promises to catch.


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("credmail.core.x", "import requests", ["requests"]),
        ("credmail.core.x", "from credmail.service import ports", ["credmail.service"]),
        ("credmail.core.x", "import email.policy\nfrom credmail.core import values", []),
        ("credmail.core.x", "def f():\n    import structlog\n", ["structlog"]),
        ("credmail.core.x", "import idna\nfrom idna import alabel", []),
        ("credmail.core.x", "import idna_ssl", ["idna_ssl"]),
        ("credmail.service.x", "import sqlalchemy.orm", ["sqlalchemy.orm"]),
        ("credmail.service.x", "from dns import resolver", ["dns"]),
        ("credmail.service.x", "def f():\n    import dkim\n", ["dkim"]),
        ("credmail.service.x", "from credmail.adapters.db import uow", ["credmail.adapters.db"]),
        ("credmail.service.x", "from ..adapters import smtp", ["credmail.adapters"]),
        ("credmail.service.x", "from ..entrypoints.cli import main", ["credmail.entrypoints.cli"]),
        ("credmail.service.x", "import jinja2, structlog, authres\nimport dnspython_x", []),
        ("credmail.entrypoints.web", "import imapclient", ["imapclient"]),
        ("credmail.entrypoints.web", "from credmail.adapters import smtp", ["credmail.adapters"]),
        ("credmail.entrypoints.web", "from credmail.bootstrap import make_app", []),
        ("credmail.adapters.x", "from credmail.entrypoints import cli", ["credmail.entrypoints"]),
        ("credmail.web.x", "from credmail.adapters.db import uow", ["credmail.adapters.db"]),
        ("credmail.web.x", "import sqlalchemy", ["sqlalchemy"]),
        ("credmail.web.x", "from credmail.bootstrap import App", []),
        ("credmail.service.x", "from credmail.web import app", ["credmail.web"]),
        ("credmail.adapters.x", "import credmail.web.reset", ["credmail.web.reset"]),
        ("credmail.adapters.x", "import sqlalchemy\nfrom credmail.service import ports", []),
    ],
)
def test_the_checker_catches_forbidden_imports(
    module: str, source: str, expected: list[str]
) -> None:
    assert violations(module, source) == expected


def test_a_package_resolves_its_relative_imports_from_itself() -> None:
    assert violations("credmail.service.outbox", "from ..adapters import x", True) == []
    assert violations("credmail.service.outbox", "from ...adapters import x", True) == [
        "credmail.adapters"
    ]
