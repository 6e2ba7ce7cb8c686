"""A newcomer's first hour: the README's first command alone gives everything `snakemake --report` needs.

The workflow test copies the repository like a fresh clone, runs the README's quick-start command 1
there (a new venv, ``pip install -e .`` without extras, ``snakemake --cores 2``; the config shrunk
to one tiny dataset so the run takes seconds), then builds the HTML report with that environment:
every table and figure in it has a caption and the report has the workflow description. The other
tests render the report's reStructuredText (``report/*.rst``) the way Snakemake does, quickly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from workflow_utils import REPO, default_config, quick_start_command, tiny_config, write_config

REPORT_DIR = REPO / "report"
#: Captions: report/tables/<table>.rst and report/figures/<figure>.rst, named after the output they describe.
CAPTIONS = sorted(REPORT_DIR.glob("*/*.rst"))
CAPTION_IDS = [str(p.relative_to(REPORT_DIR).with_suffix("")) for p in CAPTIONS]
#: Embedding types that need neither another dataset nor a (stand-in) checkpoint: a short run.
QUICK_TYPES = {"training_pca", "random"}


# ---------------------------------------------------------------------------------------------------
# Rendering report/*.rst as Snakemake does (Jinja2, then docutils), without running the workflow


def render_rst(path: Path, config: dict[str, Any], **wildcards: str) -> str:
    """Render a caption or the workflow description to HTML; any docutils warning is an error."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    snakemake = SimpleNamespace(config=config, wildcards=SimpleNamespace(**wildcards), params=SimpleNamespace())
    text = Environment().from_string(path.read_text()).render(snakemake=snakemake, categories={}, files={})
    overrides = {"halt_level": 2, "report_level": 2, "warning_stream": False}
    return publish_parts(text, writer="html", settings_overrides=overrides)["html_body"]


def with_source(config: dict[str, Any], dataset: str, source: str) -> dict[str, Any]:
    config = json.loads(json.dumps(config))
    config["datasets"][dataset]["source"] = source
    return config


#: Captions of outputs made under the default protocol alone (rule interactions has no protocol wildcard).
DEFAULT_ONLY = {"tables/interactions", "figures/interactions"}
CAPTION_CASES = [pytest.param(path, protocol, id=f"{name}-{protocol}") for path, name in zip(CAPTIONS, CAPTION_IDS)
                 for protocol in ("default", "seed_compat") if protocol == "default" or name not in DEFAULT_ONLY]


def test_default_only_captions_belong_to_a_rule_without_a_protocol():
    """The captions rendered under the default protocol alone are those of rule interactions, whose outputs are the
    default protocol's only (no protocol wildcard), so no seed_compat output carries them."""
    rules = (REPO / "rules" / "aggregate.smk").read_text()
    rule = rules[rules.index("rule interactions:"):]
    rule = rule[:rule.index("\nrule ")] if "\nrule " in rule else rule
    assert "{{protocol}}" not in rule and "tables/default/" in rule and "figures/default/" in rule
    assert {"tables/interactions", "figures/interactions"} == DEFAULT_ONLY <= set(CAPTION_IDS)
    assert "INTERACTION_TABLE}.rst" in rule


@pytest.mark.parametrize(("caption", "protocol"), CAPTION_CASES)
def test_captions_render_cleanly_and_label_leaks_and_synthetic_data(caption, protocol):
    config = default_config()
    dataset = next(iter(config["datasets"]))
    synthetic = render_rst(caption, with_source(config, dataset, "synthetic"), dataset=dataset, protocol=protocol)
    real = render_rst(caption, with_source(config, dataset, "gears"), dataset=dataset, protocol=protocol)
    leaks = protocol == "seed_compat" or caption.stem == "audit"
    assert ("LEAKS TEST DATA" in real) == leaks
    if caption.stem not in ("combined", "forest", "leaderboard_all"):  # per-dataset captions name the dataset, its source
        assert dataset in real
        assert "Synthetic data" in synthetic and "Synthetic data" not in real


def test_workflow_description_names_the_run_and_its_synthetic_parts():
    config = default_config()
    html = render_rst(REPORT_DIR / "workflow.rst", config)
    for name in config["datasets"]:
        assert name in html
    stand_ins = [
        name
        for name, spec in config["baselines"].items()
        if any((spec.get(side) or {}).get("checkpoint") == "synthetic" or (spec.get(side) or {}).get("path") == "synthetic"
               for side in ("gene", "pert"))
    ]
    assert stand_ins and all(name in html for name in stand_ins)
    assert 'class="admonition warning"' not in html
    leaking = render_rst(REPORT_DIR / "workflow.rst", {**config, "protocol": "seed_compat"})
    assert 'class="admonition warning"' in leaking and "LEAKS TEST DATA" in leaking


def report_calls(text: str) -> list[str]:
    """The argument text of every ``report(...)`` call in a rule file."""
    calls = []
    for match in re.finditer(r"\breport\(", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        calls.append(text[match.end() : i - 1])
    return calls


def test_every_report_output_has_a_caption_and_the_workflow_a_description():
    calls = [call for smk in sorted((REPO / "rules").glob("*.smk")) for call in report_calls(smk.read_text())]
    assert calls
    assert [c for c in calls if "caption=" not in c] == []
    named = {m for c in calls for m in re.findall(r'caption=f?"\.\./report/([^"]+\.rst)"', c)}
    assert named, "captions are given as caption=\"../report/<tables|figures>/<name>.rst\""
    for name in named:  # f-string captions ({name}.rst) are checked by the workflow test's report
        if "{" not in name:
            assert (REPORT_DIR / name).exists(), name
    assert re.search(r'^report:\s*"report/workflow\.rst"', (REPO / "Snakefile").read_text(), flags=re.M)


# ---------------------------------------------------------------------------------------------------
# The README's first command in a fresh copy, then the report


def fresh_clone(dest: Path) -> Path:
    """The repository's files as a clone would have them (tracked and new, not ignored) in ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def clean_env(clone: Path) -> dict[str, str]:
    """The environment of a new shell in the clone: no active venv, the clone's .venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    outer = str(Path(sys.executable).parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != outer]
    env["PATH"] = os.pathsep.join([str(clone / ".venv" / "bin"), str(Path(sys.base_prefix) / "bin"), *path])
    return env


def quick_config() -> dict[str, Any]:
    """The default config, tiny: one synthetic dataset, the baselines that need no other input, one K."""
    config = tiny_config()
    name = next(n for n, ds in config["datasets"].items() if ds["source"] == "synthetic")
    config["datasets"] = {name: config["datasets"][name]}
    config["baselines"] = {
        b: spec
        for b, spec in config["baselines"].items()
        if all((spec.get(side) or {"type": "training_pca"})["type"] in QUICK_TYPES for side in ("gene", "pert"))
    }
    config["top_pcts"] = [max(config["top_pcts"])]
    return config


def run(cmd: str, clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "-c", cmd], cwd=clone, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"`{cmd}` failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory):
    """A fresh copy after the README's command 1 (install without extras, then the tiny run)."""
    command = quick_start_command(1)
    parts = [p.strip() for p in command.split("&&")]
    assert parts[0] == "python3 -m venv .venv" and parts[1] == ".venv/bin/pip install -e ." and parts[2].startswith(
        ".venv/bin/snakemake"
    ), f"the README's first command changed; update this test: {command}"
    clone = fresh_clone(tmp_path_factory.mktemp("newcomer"))
    write_config(clone, quick_config())
    env = clean_env(clone)
    start = time.monotonic()
    run(f"{parts[0]} && {parts[1]}", clone, env)
    install_seconds = time.monotonic() - start
    run(parts[2], clone, env)
    print(f"\nquick-start install took {install_seconds:.0f} s")
    return SimpleNamespace(clone=clone, env=env, install_seconds=install_seconds)


def report_data(html: str) -> tuple[dict[str, Any], str]:
    """The results (path → name, labels, caption, ...) and the workflow description of a Snakemake report."""
    decoder = json.JSONDecoder()
    start = [m.end() for m in re.finditer(r"var results = (?=\{)", html)][-1]
    results, _ = decoder.raw_decode(html, start)
    desc_start = re.search(r"var workflow_desc = (?=\")", html).end()
    description, _ = decoder.raw_decode(html, desc_start)
    return results, description


@pytest.mark.workflow
def test_quick_start_installs_no_test_extras(newcomer):
    for module in ("pytest", "gears", "snakefmt"):
        proc = subprocess.run(
            [".venv/bin/python", "-c", f"import {module}"], cwd=newcomer.clone, env=newcomer.env, capture_output=True
        )
        assert proc.returncode != 0, f"{module} is installed: the environment is not command 1's alone"


@pytest.mark.workflow
def test_report_from_the_quick_start_environment(newcomer):
    proc = run(".venv/bin/snakemake --report report.html", newcomer.clone, newcomer.env)
    assert "Report created" in proc.stdout + proc.stderr
    results, description = report_data((newcomer.clone / "report.html").read_text())
    kinds = {Path(path).suffix for path in results}
    assert {".csv", ".md", ".png", ".svg"} <= kinds, sorted(results)
    assert [path for path, r in results.items() if not r.get("caption", "").strip()] == []
    assert "LSFT benchmark of linear perturbation-response models" in description
    dataset = next(iter(quick_config()["datasets"]))
    assert dataset in description and "synthetic data" in description.lower()
    assert all("Synthetic data" in r["caption"] for path, r in results.items() if dataset in Path(path).parts)


def test_workflow_catalog_settings():
    """The catalog's standardized-usage file: conda deployment (every rule has an env) and the report."""
    settings = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert settings["software-stack-deployment"]["conda"] is True
    assert settings["report"] is True
    assert set(settings["mandatory-flags"]) == {"desc", "flags"}
    assert (REPO / "config" / "README.md").exists()
