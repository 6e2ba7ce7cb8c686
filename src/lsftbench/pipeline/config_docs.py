"""Render ``config/README.md`` from ``config/schema.yaml``: every key with type, default, allowed values.

The schema is the single source of the configuration reference. This module walks it generically
(nested ``properties``, ``additionalProperties`` maps such as ``datasets.<name>``, ``$ref``
definitions, arrays, ``enum``, ``anyOf``/``oneOf`` and numeric bounds), so adding a key to the schema
needs no change here; ``tests/test_config_docs.py`` checks that the committed file is up to date.

Regenerate from the repository root with::

    .venv/bin/python -m lsftbench.pipeline.config_docs --output config/README.md

(``--check`` exits with status 1 when the file differs from what the schema gives.)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "KeyDoc",
    "Section",
    "DEFAULT_SCHEMA",
    "DEFAULT_OUTPUT",
    "load_schema",
    "document",
    "render_markdown",
    "undocumented_keys",
    "main",
]

DEFAULT_SCHEMA = Path("config") / "schema.yaml"
DEFAULT_OUTPUT = Path("config") / "README.md"
#: Placeholder for the user-chosen name of an entry of a map such as ``datasets``.
NAME = "<name>"
_COMPOSITES = ("anyOf", "oneOf")
_BOUNDS = (
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
)

HEADER = """\
# Configuration

<!-- Generated from config/schema.yaml by `python -m lsftbench.pipeline.config_docs --output config/README.md`.
     Do not edit by hand: change the schema and regenerate (tests/test_config_docs.py checks this file). -->

The workflow reads `config/config.yaml` (the default run: the three datasets as offline synthetic
stand-ins, every baseline); `config/gears.yaml` is the configuration for the real GEARS datasets, used
with `--configfile config/gears.yaml`, and `config/doubles.yaml` the double-perturbation benchmark (the
Norman stand-in, SPEC 10) (the README's "Configuration" section says how a `--configfile`
combines with the default file). At start-up the configuration is validated against
`config/schema.yaml`: a wrong type, an unknown key or a value outside the allowed range stops the run
before any job, naming the key.

Reading the tables below: **required** keys must be present; every other key may be left out and then
takes the default shown ("—": no default, the key is simply unset). `<name>` stands for a name you choose,
e.g. the dataset name under `datasets` or the baseline name under `baselines`; names may contain letters,
digits, `_` and `-`.
"""


@dataclass(frozen=True)
class KeyDoc:
    """One documented configuration key.

    Attributes
    ----------
    key
        Dotted path, ``<name>`` for a user-chosen map entry (``datasets.<name>.source``).
    type
        Human-readable type (``integer``, ``list of number``, ``mapping of <name> → dataset``, ...).
    default
        The schema default formatted as YAML, ``required`` for a required key, ``—`` for neither.
    allowed
        Allowed values or bounds (``l2``, ``cosine`` / ``> 0``, ``≤ 100``), empty when unrestricted.
    description
        The schema ``description``, whitespace collapsed.
    group
        True for a key that only groups sub-keys documented in their own rows (``lsft``, ``split``).
    """

    key: str
    type: str
    default: str
    allowed: str
    description: str
    group: bool = False


@dataclass(frozen=True)
class Section:
    """A table of keys: the top-level keys, or a definition used at several places (``embedding``).

    Attributes
    ----------
    name
        The definition's name; ``""`` for the top-level keys.
    title
        Heading of the section.
    used_at
        Keys whose value is this definition (its rows are relative to each of them).
    rows
        One row per key, in schema order, children after their parent.
    """

    name: str
    title: str
    used_at: tuple[str, ...]
    rows: tuple[KeyDoc, ...]


def load_schema(path: str | Path = DEFAULT_SCHEMA) -> dict[str, Any]:
    """Read the YAML schema (key order preserved)."""
    return yaml.safe_load(Path(path).read_text())


def _definitions(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema.get("definitions", {}), **schema.get("$defs", {})}


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _walk_refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` target name below ``node``, once per occurrence."""
    if isinstance(node, dict):
        name = _ref_name(node)
        if name:
            yield name
        for value in node.values():
            yield from _walk_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_refs(value)


def _shared_definitions(schema: dict[str, Any]) -> list[str]:
    """Definitions referenced more than once get a section of their own; others are inlined."""
    counts = Counter(_walk_refs({k: v for k, v in schema.items() if k not in ("definitions", "$defs")}))
    defs = _definitions(schema)
    for name in defs:
        counts.update(_walk_refs(defs[name]))
    return [name for name in defs if counts[name] > 1]


def _format_value(value: Any) -> str:
    """A schema value as it would be written in the YAML config."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        plain = yaml.safe_load(value) == value if value else False
        return value if plain and not value.startswith(("[", "{", "*", "&", "!", "#")) else f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _code(text: str) -> str:
    return f"`{text}`"


class _Walker:
    """Turns schema nodes into rows; shared definitions become references to their own section."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.definitions = _definitions(schema)
        self.shared = set(_shared_definitions(schema))
        self.used_at: dict[str, list[str]] = {name: [] for name in self.shared}

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Inline a non-shared ``$ref`` (sibling keywords override the definition's)."""
        name = _ref_name(node)
        if name and name not in self.shared:
            merged = {**self.definitions[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return self.resolve(merged)
        return node

    def type_of(self, node: dict[str, Any]) -> str:
        name = _ref_name(node)
        if name:
            return f"{name} (see below)" if name in self.shared else name
        for key in _COMPOSITES:
            if key in node:
                return " or ".join(dict.fromkeys(self.type_of(sub) for sub in node[key]))
        kind = node.get("type")
        if isinstance(kind, list):
            return " or ".join(kind)
        if kind == "array" or (kind is None and "items" in node):
            items = node.get("items")
            return f"list of {self.type_of(items)}" if isinstance(items, dict) else "list"
        if kind == "object" or (kind is None and ("properties" in node or "additionalProperties" in node)):
            return self._object_type(node)
        if kind:
            return str(kind)
        if "enum" in node:
            return _enum_type(node["enum"])
        return "any"

    def _object_type(self, node: dict[str, Any]) -> str:
        extra = node.get("additionalProperties")
        if "properties" not in node and isinstance(extra, dict):
            return f"mapping of {_code(NAME)} → {self.type_of(extra)}"
        return "mapping"

    def allowed(self, node: dict[str, Any]) -> str:
        node = self.resolve(node)
        if _ref_name(node):
            return ""
        parts = [_allowed_scalar(node)]
        for key in _COMPOSITES:
            parts.extend(self.allowed(sub) for sub in node.get(key, []))
        items = node.get("items")
        if isinstance(items, dict):
            inner = self.allowed(items)
            parts.append(f"each {inner}" if inner else "")
        parts.extend(_size_limits(node))
        return "; ".join(p for p in parts if p)

    def rows(self, node: dict[str, Any], prefix: str = "") -> Iterator[KeyDoc]:
        """Rows for the properties (and named map entries) of an object node."""
        node = self.resolve(node)
        required = set(node.get("required", []))
        for key, child in node.get("properties", {}).items():
            yield from self.key_rows(child, f"{prefix}{key}", key in required)
        extra = node.get("additionalProperties")
        if "properties" in node and isinstance(extra, dict):
            yield from self.key_rows(extra, f"{prefix}{NAME}", False)

    def key_rows(self, child: dict[str, Any], key: str, required: bool) -> Iterator[KeyDoc]:
        """The row of one key, then the rows of its children."""
        yield self.row(child, key, required)
        resolved = self.resolve(child)
        name = _ref_name(resolved)
        if name:
            self.used_at[name].append(key)
            return
        if "properties" in resolved:
            yield from self.rows(resolved, f"{key}.")
            return
        extra = resolved.get("additionalProperties")
        if isinstance(extra, dict):
            entry = self.resolve(extra)
            entry_name = _ref_name(entry)
            if entry_name:
                self.used_at[entry_name].append(f"{key}.{NAME}")
            elif "properties" in entry or isinstance(entry.get("additionalProperties"), dict):
                yield from self.rows(entry, f"{key}.{NAME}.")

    def row(self, child: dict[str, Any], key: str, required: bool) -> KeyDoc:
        resolved = self.resolve(child)
        if required:
            default = "required"
        elif "default" in resolved and resolved["default"] != {}:
            default = _code(_format_value(resolved["default"]))
        else:
            default = "—"
        return KeyDoc(
            key=key,
            type=self.type_of(child),
            default=default,
            allowed=self.allowed(child),
            description=" ".join(str(resolved.get("description", "")).split()),
            group="properties" in resolved and not _ref_name(resolved),
        )


def _enum_type(values: Sequence[Any]) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(type(v), type(v).__name__) for v in values))


def _allowed_scalar(node: dict[str, Any]) -> str:
    if "const" in node:
        return f"only {_code(_format_value(node['const']))}"
    if "enum" in node:
        return ", ".join(_code(_format_value(v)) for v in node["enum"])
    bounds = [f"{sign} {_format_value(node[key])}" for key, sign in _BOUNDS if key in node]
    if "pattern" in node:
        bounds.append(f"matches {_code(node['pattern'])}")
    return ", ".join(bounds)


def _size_limits(node: dict[str, Any]) -> list[str]:
    limits = []
    if node.get("minLength") == 1:
        limits.append("non-empty")
    elif "minLength" in node:
        limits.append(f"at least {node['minLength']} characters")
    for key, what in (("minItems", "item"), ("minProperties", "entry")):
        if key in node:
            n = node[key]
            plural = what if n == 1 else ("entries" if what == "entry" else f"{what}s")
            limits.append(f"at least {n} {plural}")
    for key, what in (("maxItems", "items"), ("maxProperties", "entries")):
        if key in node:
            limits.append(f"at most {node[key]} {what}")
    if node.get("uniqueItems"):
        limits.append("no duplicates")
    return limits


def document(schema: dict[str, Any]) -> list[Section]:
    """The configuration reference: the top-level keys, then one section per shared definition."""
    walker = _Walker(schema)
    top = tuple(walker.rows(schema))
    names = sorted(walker.shared, key=list(walker.definitions).index)
    shared_rows = {name: tuple(walker.rows(walker.definitions[name])) for name in names}
    sections = [Section("", "Keys", (), top)]
    for name in names:
        sections.append(Section(name, f"`{name}` entries", tuple(walker.used_at[name]), shared_rows[name]))
    return sections


def undocumented_keys(schema: dict[str, Any]) -> list[str]:
    """Keys without a description, except groups whose own keys are documented (``lsft``, ``split``)."""
    missing = []
    for section in document(schema):
        prefix = f"{section.name}: " if section.name else ""
        missing += [prefix + row.key for row in section.rows if not row.description and not row.group]
    return missing


def _escape_cell(text: str) -> str:
    """Markdown table cell: escape ``|`` everywhere and ``<``/``>`` outside code spans."""
    pieces = text.split("`")
    for i in range(0, len(pieces), 2):
        pieces[i] = pieces[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(pieces).replace("|", "\\|")


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def _table(rows: Sequence[KeyDoc], shared: dict[str, str]) -> list[str]:
    lines = ["| key | type | default | allowed values | description |", "|---|---|---|---|---|"]
    for row in rows:
        kind = row.type
        for name, title in shared.items():
            kind = kind.replace(f"{name} (see below)", f"[{name}](#{_anchor(title)})")
        cells = [_code(row.key), _escape_cell(kind), _escape_cell(row.default), _escape_cell(row.allowed), _escape_cell(row.description)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(schema: dict[str, Any]) -> str:
    """The whole ``config/README.md`` text."""
    sections = document(schema)
    shared = {s.name: s.title for s in sections if s.name}
    lines = [HEADER.rstrip("\n")]
    for section in sections:
        lines += ["", f"## {section.title}", ""]
        if section.used_at:
            places = ", ".join(_code(p) for p in section.used_at)
            lines += [f"Used at {places}; the keys below are relative to each of them.", ""]
        lines += _table(section.rows, shared)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the reference, write it (``--output``) or check it (``--check``)."""
    parser = argparse.ArgumentParser(prog="python -m lsftbench.pipeline.config_docs", description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA, help="schema YAML (default: %(default)s)")
    parser.add_argument("--output", type=Path, help="write here instead of standard output")
    parser.add_argument("--check", action="store_true", help="exit 1 if --output (default config/README.md) is not up to date")
    args = parser.parse_args(argv)
    text = render_markdown(load_schema(args.schema))
    if args.check:
        target = args.output or DEFAULT_OUTPUT
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date: run python -m lsftbench.pipeline.config_docs --output {target}", file=sys.stderr)
            return 1
        return 0
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
