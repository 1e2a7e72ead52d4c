"""Small, explicit checks for dicts read from JSON: one place that names the bad field.

Formats (records, manifests), the config file and the web API all read untrusted
mappings; each field is pulled through one of these functions so that a refusal
always says which field was wrong and what was expected.
"""
from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping

from .errors import FormatError

_MISSING = object()


def require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FormatError(f"{what} must be a JSON object, got {type(value).__name__}", field=what)
    return value


def text(data: Mapping[str, Any], field: str, *, max_len: int, required: bool = True,
         allow_empty: bool = False, default: str | None = None, prefix: str = "") -> str | None:
    """A string field, stripped of surrounding whitespace, at most ``max_len`` characters."""
    name = prefix + field
    value = data.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise FormatError(f"'{name}' is required", field=name)
        return default
    if not isinstance(value, str):
        raise FormatError(f"'{name}' must be a string, got {type(value).__name__}", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from JSON's \ud800 escapes: not text
        raise FormatError(f"'{name}' is not valid Unicode text", field=name) from None
    value = value.strip()
    if not value and not allow_empty:
        if required:
            raise FormatError(f"'{name}' must not be empty", field=name)
        return default
    if len(value) > max_len:
        raise FormatError(f"'{name}' is {len(value)} characters; the limit is {max_len}", field=name)
    return value


def choice(data: Mapping[str, Any], field: str, allowed: Iterable[str], *, required: bool = True,
           default: str | None = None, prefix: str = "") -> str | None:
    allowed = tuple(allowed)
    value = text(data, field, max_len=64, required=required, default=default, prefix=prefix)
    if value is not None and value not in allowed:
        raise FormatError(f"'{prefix}{field}' must be one of {', '.join(allowed)}; got {value!r}",
                          field=prefix + field)
    return value


def integer(data: Mapping[str, Any], field: str, *, minimum: int | None = None,
            maximum: int | None = None, required: bool = True, default: int | None = None,
            prefix: str = "") -> int | None:
    name = prefix + field
    value = data.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise FormatError(f"'{name}' is required", field=name)
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"'{name}' must be an integer, got {type(value).__name__}", field=name)
    if minimum is not None and value < minimum:
        raise FormatError(f"'{name}' must be >= {minimum}, got {value}", field=name)
    if maximum is not None and value > maximum:
        raise FormatError(f"'{name}' must be <= {maximum}, got {value}", field=name)
    return value


def number(data: Mapping[str, Any], field: str, *, minimum: float | None = None,
           maximum: float | None = None, required: bool = True, default: float | None = None,
           prefix: str = "") -> float | None:
    name = prefix + field
    value = data.get(field, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise FormatError(f"'{name}' is required", field=name)
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormatError(f"'{name}' must be a finite number, got {value!r}", field=name)
    if minimum is not None and value < minimum:
        raise FormatError(f"'{name}' must be >= {minimum}, got {value}", field=name)
    if maximum is not None and value > maximum:
        raise FormatError(f"'{name}' must be <= {maximum}, got {value}", field=name)
    return float(value)


def string_list(data: Mapping[str, Any], field: str, *, max_items: int, max_len: int,
                min_items: int = 1, prefix: str = "") -> list[str]:
    name = prefix + field
    value = data.get(field, _MISSING)
    if value is _MISSING or value is None:
        raise FormatError(f"'{name}' is required", field=name)
    if not isinstance(value, list):
        raise FormatError(f"'{name}' must be a list of strings", field=name)
    if not min_items <= len(value) <= max_items:
        raise FormatError(f"'{name}' must hold {min_items} to {max_items} items, got {len(value)}",
                          field=name)
    return [text({f"{name}[{i}]": item}, f"{name}[{i}]", max_len=max_len)
            for i, item in enumerate(value)]


def format_header(data: Mapping[str, Any], expected: str, newest: int, upgrade_hint: str) -> int:
    """Check ``format`` and ``format_version`` of a manifest; return the version."""
    if data.get("format") != expected:
        raise FormatError(f"manifest 'format' must be {expected!r}", field="format")
    version = integer(data, "format_version", minimum=1)
    if version > newest:
        raise FormatError(f"format_version {version} is newer than this software understands "
                          f"({newest})", field="format_version", hint=upgrade_hint)
    return version


def file_table(data: Mapping[str, Any], required: Iterable[str]) -> dict[str, dict[str, Any]]:
    """A manifest's ``files``: {plain file name: {sha256, bytes}}, with ``required`` present."""
    files = require_mapping(data.get("files"), "files")
    for name in required:
        if name not in files:
            raise FormatError(f"manifest 'files' lacks {name}", field=f"files.{name}")
    table = {}
    for name, entry in files.items():
        if not isinstance(name, str) or not name or "/" in name or "\\" in name \
                or name.startswith("."):
            raise FormatError(f"file name {name!r} in the manifest is not a plain name",
                              field="files")
        entry = require_mapping(entry, f"files.{name}")
        digest = text(entry, "sha256", max_len=64, prefix=f"files.{name}.")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise FormatError(f"'files.{name}.sha256' must be 64 hex digits", field=f"files.{name}.sha256")
        table[name] = {"sha256": digest,
                       "bytes": integer(entry, "bytes", minimum=0, required=False,
                                        prefix=f"files.{name}.")}
    return table


PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def plain_id(data: Mapping[str, Any], field: str, *, required: bool = True,
             prefix: str = "") -> str | None:
    """An id that may also name a file: letters, digits, '-', '_', '.'; at most 64."""
    value = text(data, field, max_len=64, required=required, prefix=prefix)
    if value is not None and not PLAIN_ID.match(value):
        raise FormatError(f"'{prefix}{field}' may hold only letters, digits, '-', '_' and '.' "
                          f"(and start with a letter or digit), got {value!r}", field=prefix + field)
    return value


def no_unknown_fields(data: Mapping[str, Any], known: Iterable[str], what: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise FormatError(f"{what} has unknown field(s): {', '.join(unknown)}", field=unknown[0])
