"""Conda envs pinned per rule: every rule declares one, and each pins the same versions as pip."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from workflow_utils import REPO

CONDA_TO_PIP = {"pytorch": "torch"}


def pip_pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        name, sep, version = dep.partition("==")
        assert sep, f"pyproject dependency {dep!r} is not pinned exactly"
        pins[name.strip().lower()] = version.strip()
    return pins


ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def test_every_rule_declares_a_conda_env():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0]
            assert re.search(r"^\s+conda:\s*\n\s+\"\.\./envs/\w+\.yaml\"", block, flags=re.M), f"rule {name} in {smk.name}"
            env = re.search(r"\"\.\./envs/(\w+\.yaml)\"", block).group(1)
            assert (REPO / "envs" / env).exists(), f"rule {name}: envs/{env} missing"


@pytest.mark.parametrize("env", ENV_FILES, ids=[e.name for e in ENV_FILES])
def test_env_pins_exact_versions_equal_to_pip(env):
    pins = pip_pins()
    spec = yaml.safe_load(env.read_text())
    assert spec["channels"][0] == "conda-forge"
    for dep in spec["dependencies"]:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)=([0-9][0-9A-Za-z.]*)", dep)
        assert m, f"{env.name}: {dep!r} is not an exact pin"
        name, version = m.group(1).lower(), m.group(2)
        if name == "python":
            assert version == "3.11"
            continue
        pip_name = CONDA_TO_PIP.get(name, name)
        assert pip_name in pins, f"{env.name}: {name} is not a pip dependency in pyproject.toml"
        assert pins[pip_name] == version, f"{env.name}: {name}={version} but pyproject pins {pins[pip_name]}"
