"""GEARS 0.1.2's own code as a parity reference, imported without ``gears/__init__.py``.

``gears/__init__.py`` imports ``torch_geometric`` (not installed: GEARS's GPU stack); the modules the
tests use (``data_utils`` for the split, ``inference`` for the metrics) need it only for names they
never call. Those dependencies (``torch_geometric.data`` and the slow ``dcor``) are stubbed for the
import only and removed from ``sys.modules`` again.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def gears_modules(*names: str) -> Iterator[dict[str, types.ModuleType]]:
    """The installed ``gears/<name>.py`` modules, loaded as ``_gears_ref.<name>`` (cell-gears is a test extra)."""
    spec = importlib.util.find_spec("gears")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("cell-gears is not installed: pip install -e '.[test]'")
    pkg = types.ModuleType("_gears_ref")
    pkg.__path__ = list(spec.submodule_search_locations)
    stubs: dict[str, types.ModuleType] = {"_gears_ref": pkg}
    if importlib.util.find_spec("torch_geometric") is None:
        tg, tg_data = types.ModuleType("torch_geometric"), types.ModuleType("torch_geometric.data")
        tg_data.Data = type("Data", (), {})
        tg_data.DataLoader = object
        tg.data = tg_data
        stubs.update({"torch_geometric": tg, "torch_geometric.data": tg_data})
    if "dcor" not in sys.modules:
        dcor = types.ModuleType("dcor")
        dcor.distance_correlation = lambda *a, **k: NotImplemented
        stubs["dcor"] = dcor
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        with warnings.catch_warnings():  # GEARS calls warnings.filterwarnings("ignore")
            modules = {name: importlib.import_module(f"_gears_ref.{name}") for name in names}
    finally:
        for name, old in saved.items():
            if name != "_gears_ref":
                if old is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = old
    try:
        yield modules
    finally:
        for name in [n for n in sys.modules if n == "_gears_ref" or n.startswith("_gears_ref.")]:
            sys.modules.pop(name)
