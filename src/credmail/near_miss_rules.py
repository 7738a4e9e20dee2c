"""Load the near-miss rules: the shipped data file (or the school's own file) plus the
terms and rules the config adds. Errors are one line naming the file or key."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from credmail.core.near_miss import NearMissRules, RulesError

DEFAULT_RULES = "near_miss_rules.toml"


def default_rules_data() -> dict[str, Any]:
    """The rules credmail ships (credmail/data/near_miss_rules.toml)."""
    text = resources.files("credmail.data").joinpath(DEFAULT_RULES).read_text("utf-8")
    return tomllib.loads(text)


def load_near_miss_rules(
    path: Path | None,
    extra_vocabulary: Mapping[str, Any] | None = None,
    extra_rules: Sequence[Mapping[str, Any]] = (),
) -> NearMissRules:
    """The rules from `path` (None: the shipped file), extended by the config's own.
    Raises ValueError with one line."""
    if path is None:
        data = default_rules_data()
    else:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from None
    try:
        return NearMissRules.from_data(data, extra_vocabulary, extra_rules)
    except RulesError as exc:  # the shipped file is tested: the school's rules are at fault
        raise ValueError(f"{path or 'near_miss_rules'}: {exc}") from None
