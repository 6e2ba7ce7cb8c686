"""The package's shape: stage subpackages in the order of the DAG, no import upward, no circle, thin scripts.

Imports are read from the source (``ast``), including those inside functions (a lazy import is still
a dependency), so the checks follow the code as it changes. ``docs/architecture.md`` draws the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lsftbench"
SCRIPTS = ROOT / "workflow" / "scripts"
#: Layers from the ground up: a module may import from its own layer and those below it.
LAYERS = {
    "io": 0, "labels": 0, "formats": 0, "specs": 0,
    "pipeline": 1,
    "data": 2,
    "embeddings": 3,
    "model": 4,
    "evaluation": 5,
    "report": 6,
}
STAGES = ("data", "embeddings", "model", "evaluation", "report")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> set[str]:
    """Every ``lsftbench`` module ``module`` imports (module-level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, path.name == "__init__.py")
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("lsftbench") and n != module}
    return found


GRAPH = {m: {t for t in _imports(m, p) if t in MODULES} for m, p in MODULES.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # the package's own __init__
    return LAYERS[parts[1]]


def test_every_module_is_in_a_known_layer():
    unknown = sorted(m for m in MODULES if m != "lsftbench" and m.split(".")[1] not in LAYERS)
    assert not unknown, f"modules outside the layers of docs/architecture.md: {unknown}"
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").exists()


def test_nothing_imports_upward():
    upward = sorted(
        f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets if m != "lsftbench" and _layer(t) > _layer(m)
    )
    assert not upward, "imports up the stack:\n" + "\n".join(upward)


def test_no_import_circle():
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]) if nxt in stack else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_subpackage_inits_import_nothing_heavy():
    """A stage's ``__init__`` is documentation only: importing one module never loads the whole stage."""
    for stage in (*STAGES, "pipeline", "data.synthetic"):
        tree = ast.parse((PACKAGE / stage.replace(".", "/") / "__init__.py").read_text())
        assert not [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)], stage


SCRIPT_FILES = sorted(SCRIPTS.glob("*.py"))


@pytest.mark.parametrize("script", SCRIPT_FILES, ids=[p.name for p in SCRIPT_FILES])
def test_scripts_only_adapt(script):
    """A job script reads the snakemake object, calls the package and logs: no path edits, no protocol
    branches, no functions of its own, at most 40 lines."""
    text = script.read_text()
    tree = ast.parse(text)
    assert "sys.path" not in text
    assert len(text.splitlines()) <= 40, f"{script.name}: {len(text.splitlines())} lines"
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)], "define it in the package"
    branches = [n for n in ast.walk(tree) if isinstance(n, ast.If | ast.IfExp) and "protocol" in ast.unparse(n.test)]
    assert not branches, f"{script.name} branches on the protocol: decide it in lsftbench.model.protocol"
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert any(m.startswith("lsftbench.") for m in imported)
