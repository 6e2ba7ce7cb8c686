"""config/README.md is generated from config/schema.yaml: up to date, complete, and rendered correctly."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from workflow_utils import REPO

from lsftbench.pipeline.config_docs import NAME, document, load_schema, main, render_markdown, undocumented_keys

SCHEMA = REPO / "config" / "schema.yaml"
README = REPO / "config" / "README.md"
REGENERATE = ".venv/bin/python -m lsftbench.pipeline.config_docs --output config/README.md"


def documented_keys(schema: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Full dotted keys in the reference, and the keys that are maps of user-named entries."""
    sections = document(schema)
    keys = {row.key for row in sections[0].rows}
    for section in sections[1:]:
        keys |= {f"{place}.{row.key}" for place in section.used_at for row in section.rows}
    maps = {row.key for section in sections for row in section.rows if row.type.startswith("mapping of")}
    maps |= {f"{place}.{row.key}" for s in sections[1:] for place in s.used_at for row in s.rows if row.type.startswith("mapping of")}
    # An entry of a map is documented by the map's own row (datasets.<name>.overrides.<name>).
    return keys | {f"{m}.{NAME}" for m in maps}, maps


def config_keys(node: dict[str, Any], maps: set[str], prefix: str = "") -> set[str]:
    """Dotted keys of a config file, user-chosen names of map entries replaced by ``<name>``."""
    keys = set()
    in_map = prefix.rstrip(".") in maps
    for key, value in node.items():
        path = f"{prefix}{NAME}" if in_map else f"{prefix}{key}"
        keys.add(path)
        if isinstance(value, dict):
            keys |= config_keys(value, maps, f"{path}.")
    return keys


def test_committed_readme_is_generated_from_the_schema():
    assert README.read_text() == render_markdown(load_schema(SCHEMA)), f"config/README.md is out of date: run {REGENERATE}"


def test_check_mode_agrees(monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["--check"]) == 0


def test_every_key_has_a_description():
    missing = undocumented_keys(load_schema(SCHEMA))
    assert not missing, f"add a description to these keys in config/schema.yaml, then run {REGENERATE}: {missing}"


@pytest.mark.parametrize("config_file", ["config.yaml", "gears.yaml", "doubles.yaml"])
def test_every_key_of_the_shipped_configs_is_documented(config_file):
    keys, maps = documented_keys(load_schema(SCHEMA))
    used = config_keys(yaml.safe_load((REPO / "config" / config_file).read_text()), maps)
    assert used - keys == set()


TOY = """
definitions:
  point:
    type: object
    required: [x]
    properties:
      x: {type: number, exclusiveMinimum: 0, description: "x | coordinate"}
      mode: {enum: ["on", "off"], default: "on"}
  entry:
    type: object
    properties:
      size: {type: integer, minimum: 1, maximum: 9, default: 3, description: size of <it>}
      a: {$ref: "#/definitions/point"}
      b: {$ref: "#/definitions/point"}
type: object
required: [entries]
properties:
  entries:
    type: object
    minProperties: 1
    additionalProperties: {$ref: "#/definitions/entry"}
    description: named entries
  group:
    type: object
    default: {}
    properties:
      values:
        type: array
        items: {type: number, minimum: 0}
        uniqueItems: true
        default: [1, 2.5]
      name: {type: string, minLength: 1}
  either: {anyOf: [{type: integer}, {type: string, enum: [auto]}], default: auto, description: e}
"""


def test_generator_on_a_known_schema():
    sections = document(yaml.safe_load(TOY))
    rows = {r.key: r for r in sections[0].rows}
    assert list(rows) == [
        "entries", "entries.<name>.size", "entries.<name>.a", "entries.<name>.b",
        "group", "group.values", "group.name", "either",
    ]  # fmt: skip
    assert rows["entries"].type == "mapping of `<name>` → entry" and rows["entries"].default == "required"
    assert rows["entries"].allowed == "at least 1 entry"
    assert (rows["entries.<name>.size"].allowed, rows["entries.<name>.size"].default) == ("≥ 1, ≤ 9", "`3`")
    assert rows["entries.<name>.a"].type == "point (see below)"
    assert rows["group"].group and rows["group"].default == "—"
    assert rows["group.values"].type == "list of number"
    assert rows["group.values"].allowed == "each ≥ 0; no duplicates" and rows["group.values"].default == "`[1, 2.5]`"
    assert rows["group.name"].allowed == "non-empty"
    assert rows["either"].type == "integer or string" and rows["either"].allowed == "`auto`"
    point = sections[1]
    assert (point.name, point.used_at) == ("point", ("entries.<name>.a", "entries.<name>.b"))
    prow = {r.key: r for r in point.rows}
    assert prow["x"].default == "required" and prow["x"].allowed == "> 0"
    # "on" must stay quoted: unquoted, YAML reads it as a boolean.
    assert prow["mode"].type == "string" and prow["mode"].allowed == '`"on"`, `"off"`' and prow["mode"].default == '`"on"`'
    expected = ["entries.<name>.a", "entries.<name>.b", "group.values", "group.name", "point: mode"]
    assert undocumented_keys(yaml.safe_load(TOY)) == expected


def test_markdown_escapes_and_links():
    text = render_markdown(yaml.safe_load(TOY))
    assert "| `entries.<name>.a` | [point](#point-entries) |" in text
    assert "## `point` entries" in text and "Used at `entries.<name>.a`, `entries.<name>.b`" in text
    assert "x \\| coordinate" in text and "size of &lt;it&gt;" in text
