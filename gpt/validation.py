"""Checks of options and of the files a run folder holds, made before anything is written,
so a bad value fails at once with the flag (or the file and key) named, never later with
a traceback or a half-made run.

`check_number` tests one numeric option (NaN and infinity fail every range);
`config_from_dict` rebuilds a config dataclass from JSON, refusing a document that is not
an object, unknown or missing keys and values of the wrong type.
"""

from __future__ import annotations

import dataclasses
import json
import math
from numbers import Real
from pathlib import Path


class ConfigFileError(ValueError):
    """A config file (config.json, dataset.json) that is malformed: its message names the
    file and the key."""


def read_json_object(path) -> dict:
    """A JSON file that must hold one object; ConfigFileError names the file otherwise."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigFileError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigFileError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def check_number(flag: str, value, *, minimum=None, maximum=None, above=None, below=None,
                 finite: bool = True, where: str = "") -> None:
    """Raise ValueError naming `flag` unless `value` is a (finite) number within the given
    bounds: minimum <= value <= maximum, above < value < below. None passes (unset)."""
    if value is None:
        return
    prefix = f"{where}: " if where else ""
    if not isinstance(value, Real) or isinstance(value, bool):
        raise ValueError(f"{prefix}{flag} must be a number, got {value!r}")
    bounds = []
    if minimum is not None:
        bounds.append((value >= minimum, f">= {minimum}"))
    if above is not None:
        bounds.append((value > above, "positive" if above == 0 else f"> {above}"))
    if maximum is not None:
        bounds.append((value <= maximum, f"<= {maximum}"))
    if below is not None:
        bounds.append((value < below, f"< {below}"))
    if finite:
        bounds.append((math.isfinite(value), "finite"))
    failed = [text for ok, text in bounds if not ok]
    if failed:
        wanted = " and ".join(text for _, text in bounds)
        raise ValueError(f"{prefix}{flag} must be {wanted}, got {value}")


def config_from_dict(cls, document, where: str):
    """`cls(**document)` for a dataclass `cls`, after checking that `document` is a JSON
    object with exactly cls's fields, each of its annotated type; the dataclass's own
    checks then run. Every failure is a ConfigFileError naming `where` and the key."""
    if not isinstance(document, dict):
        raise ConfigFileError(f"{where}: expected a JSON object, got {type(document).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise ConfigFileError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    missing = sorted(set(fields) - set(document))
    if missing:
        raise ConfigFileError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
    for name, value in document.items():
        expected = _allowed_types(fields[name].type)
        if not any(is_of_kind(value, kind) for kind in expected):
            raise ConfigFileError(f"{where}: key {name!r} must be {' or '.join(expected)}, got "
                                  f"{value!r}")
    try:
        return cls(**document)
    except (TypeError, ValueError) as exc:
        raise ConfigFileError(f"{where}: {exc}") from None


def _allowed_types(annotation) -> list[str]:
    """'int | None' -> ['int', 'None'] (annotations are strings under postponed evaluation)."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__",
                                                                  str(annotation))
    return [part.strip() for part in text.split("|")]


def is_of_kind(value, kind: str) -> bool:
    """Whether a JSON value is of the annotation `kind` (an int is a float; a bool is no int)."""
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "dict":
        return isinstance(value, dict)
    raise TypeError(f"config_from_dict: no check for the annotation {kind!r}")
