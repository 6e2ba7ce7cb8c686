"""The docs say what the code does, where that is cheap to check.

* Every YAML config example in the README, ``docs/`` and ``examples/`` validates against the schema: no key
  a user would copy is unknown or misspelt.
* Profile settings quoted in the docs as ``key: value`` equal the profile files.
* The config-file line numbers in ``docs/bad_inputs.md`` are the ones the shipped config gives.
* ``docs/SPEC.md`` is the shared SPEC, and the README names its source documents by title.
* ``.ci/run`` runs the README's test command (quick start, command 2) as written.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import yaml
from workflow_utils import REPO, default_config, quick_start_command

from lsftbench.pipeline.config import ConfigError
from lsftbench.pipeline.preflight import validate_config

SCHEMA = REPO / "config" / "schema.yaml"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PROFILES = {name: REPO / "profiles" / name / "config.yaml" for name in ("default", "local", "slurm")}


def _yaml_blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"```yaml\n(.*?)```", text, re.S)]


def _examples() -> list[tuple[str, str]]:
    found = [(f"{p.relative_to(REPO)}:{line}", block) for p in DOCS for line, block in _yaml_blocks(p)]
    found += [(str(p.relative_to(REPO)), p.read_text()) for p in sorted((REPO / "examples").glob("*.yaml"))]
    return found


@pytest.mark.parametrize("where,block", _examples(), ids=[w for w, _ in _examples()])
def test_every_config_example_in_the_docs_validates(where, block):
    """A block is a config of one's own (as with --configfile): what it lacks comes from the shipped config."""
    example = yaml.safe_load(block)
    assert isinstance(example, dict), where
    config = copy.deepcopy(default_config())
    config.update(copy.deepcopy(example))
    try:
        validate_config(config, SCHEMA)
    except ConfigError as err:
        pytest.fail(f"{where}: the example does not validate: {err}")


def _profile_values() -> dict[str, set[str]]:
    values: dict[str, set[str]] = {}
    for path in PROFILES.values():
        data = yaml.safe_load(path.read_text())
        for key, value in data.items():
            if key.startswith("__"):
                continue
            items = value.items() if isinstance(value, dict) else [(key, value)]
            for k, v in items:
                if isinstance(v, (str, int, float, bool)) and not str(v).startswith("?"):
                    values.setdefault(str(k), set()).add(str(v).lower() if isinstance(v, bool) else str(v))
    return values


def test_profile_settings_quoted_in_the_docs_equal_the_profile_files():
    values = _profile_values()
    checked = 0
    for path in [*DOCS, *PROFILES.values()]:
        for key, value in re.findall(r"`([a-z][a-z_-]*): ([^`]+)`", path.read_text()):
            if key in values and not value.startswith(("<", "…")):
                assert value.strip() in values[key], f"{path.name}: `{key}: {value}`, but the profiles have {values[key]}"
                checked += 1
    assert checked >= 8  # rerun-incomplete, scheduler, cores, keep-going, retries, jobs, latency-wait, mem_mb, ...
    readme = (REPO / "README.md").read_text()
    default = yaml.safe_load(PROFILES["default"].read_text())
    section = readme[readme.index("- `profiles/default`"):readme.index("- `profiles/local`")]
    for key, value in default.items():  # the README's description of the default profile names all it sets
        assert f"`{key}: {str(value).lower() if isinstance(value, bool) else value}`" in section, key


def test_bad_inputs_doc_gives_the_line_numbers_of_the_shipped_config(tmp_path):
    """docs/bad_inputs.md quotes the messages of three config mistakes made in config/config.yaml."""
    doc = (REPO / "docs" / "bad_inputs.md").read_text()
    shipped = (REPO / "config" / "config.yaml").read_text()
    cases = {
        "unknown key": shipped.replace("  center: local", "  centre: local"),
        "wrong type": re.sub(r"(?m)^pca_dim: 10$", "pca_dim: ten", shipped),
        "missing key": shipped.replace("  adamson:\n    source: synthetic\n", "  adamson:\n    seed: 3\n"),
        "yaml float": re.sub(r"(?m)^ridge_penalty: .*$", "ridge_penalty: 1e-1", shipped),
    }
    (tmp_path / "config").mkdir()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for name, text in cases.items():
            assert text != shipped, name
            Path("config/config.yaml").write_text(text)
            with pytest.raises(ConfigError) as err:
                validate_config(yaml.safe_load(text), SCHEMA, ["config/config.yaml"])
            quoted = re.findall(r"\((config/config\.yaml:\d+)\)", str(err.value))
            assert quoted, (name, str(err.value))
            for location in quoted:
                line = str(err.value).split(location)[0].rsplit("'", 2)[-2]
                assert f"'{line}' ({location})" in doc or f"unknown key '{line}' ({location})" in doc, (name, location)
    finally:
        os.chdir(cwd)


def test_the_spec_is_the_shared_one_and_its_sources_are_named():
    shared = REPO.parent / "shared" / "SPEC.md"
    if shared.exists():
        assert (REPO / "docs" / "SPEC.md").read_text() == shared.read_text()
    sources = (REPO / "docs" / "sources.md").read_text()
    for title in ("LSFT Analysis: Methods and Observations", "Foundation Models Improve Perturbation Response Prediction"):
        assert title in sources
    assert "docs/sources.md" in (REPO / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    command = quick_start_command(2)
    assert command.startswith("python3 -m venv .venv") and "pytest" in command
    assert (REPO / ".ci" / "run").read_text().splitlines()[-1].strip() == command
