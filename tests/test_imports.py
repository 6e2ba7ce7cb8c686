"""Fixed cost of a job: what the fit and LSFT jobs import (and run) must not load heavy libraries.

Each check runs in a fresh interpreter, so modules other tests imported do not count. The job
scripts' own module-level imports are read from ``workflow/scripts/*.py`` (``ast``), so the check
follows the scripts as they change.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Never needed by a default-protocol fit or LSFT job (scikit-learn: only ``protocol: seed_compat``;
#: pandas: 0.22 s of CPU per job, replaced by ``lsftbench.labels`` and pyarrow for the Parquet output).
HEAVY = ("sklearn", "anndata", "matplotlib", "torch", "pandas")
#: Not needed by the package's model core either (SciPy is imported on first use, for large inputs only).
CORE_MODULES = [
    "lsftbench.data.mean_expression", "lsftbench.embeddings.build", "lsftbench.embeddings.pca", "lsftbench.model.problem",
    "lsftbench.model.global_fit", "lsftbench.model.lsft", "lsftbench.model.ridge", "lsftbench.model.protocol",
    "lsftbench.evaluation.metrics", "lsftbench.evaluation.coverage", "lsftbench.evaluation.scoring", "lsftbench.io",
    "lsftbench.pipeline.job",
]


def _loaded_after(code: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _module_level_imports(script: Path) -> str:
    """The script's module-level ``import`` statements (those in functions or branches are not run)."""
    tree = ast.parse(script.read_text())
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))


@pytest.mark.parametrize("script", ["lsft.py", "global_fit.py", "embedding.py", "training_pca.py"])
def test_job_script_imports_are_light(script):
    code = _module_level_imports(ROOT / "workflow" / "scripts" / script)
    assert "lsftbench" in code
    loaded = _loaded_after(code)
    assert not loaded & set(HEAVY), f"{script} imports {sorted(loaded & set(HEAVY))}"


def test_model_core_needs_only_numpy_h5py():
    loaded = _loaded_after("\n".join(f"import {m}" for m in CORE_MODULES))
    assert not loaded & {*HEAVY, "scipy", "pyarrow"}, sorted(loaded & {*HEAVY, "scipy", "pyarrow"})
    assert {"numpy", "h5py"} <= loaded


def test_fit_and_lsft_of_a_k562_sized_neighbourhood_run_without_scipy_or_pandas(tmp_path):
    """A saved embedding, a global fit, LSFT (neighbour sets ≤ 96, as on K562-sized data), the metrics and
    the Parquet table, as the fit and LSFT jobs run them, load neither SciPy nor pandas."""
    import numpy as np
    import pandas as pd

    from lsftbench.data.mean_expression import MeanExpression
    from lsftbench.embeddings.build import build_embedding

    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(40)]
    conds = ["ctrl"] + [f"G{i}+ctrl" for i in range(30)]
    pb = MeanExpression(X=rng.gamma(2.0, 1.0, size=(len(conds), len(genes))), obs_names=pd.Index(conds),
                        var_names=pd.Index(genes))
    split = {"train": conds[:21], "val": [], "test": conds[21:]}
    build_embedding({}, pb, split, 4, dataset="d").save(tmp_path / "emb.npz")
    code = textwrap.dedent(
        f"""
        import numpy as np
        from lsftbench.embeddings.build import Embedding
        from lsftbench.model.global_fit import global_predictions
        from lsftbench.io import write_parquet
        from lsftbench.labels import Labels
        from lsftbench.model.lsft import lsft
        from lsftbench.evaluation.metrics import metric_columns
        from lsftbench.data.mean_expression import MeanExpression
        from lsftbench.model.problem import make_problem

        rng = np.random.default_rng(0)
        genes = [f"G{{i}}" for i in range(40)]
        conds = ["ctrl"] + [f"G{{i}}+ctrl" for i in range(30)]
        pb = MeanExpression(X=rng.gamma(2.0, 1.0, size=(len(conds), len(genes))), obs_names=Labels(conds),
                            var_names=Labels(genes))
        split = {{"train": conds[:21], "val": [], "test": conds[21:]}}
        p = make_problem(pb, split, Embedding.load({str(tmp_path / "emb.npz")!r}))
        assert np.isfinite(global_predictions(p, 0.1)).all()
        res = lsft(p, 50, 0.1)
        assert res.n_neighbours == 10 and np.isfinite(res.local).all()
        cols = metric_columns(res.local, p.y[:, p.col(res.conditions)], p.top_idx, p.train_mean)
        write_parquet({{"condition": np.asarray(res.conditions), **cols}}, {str(tmp_path / "t.parquet")!r})
        """
    )
    loaded = _loaded_after(code)
    assert not loaded & {*HEAVY, "scipy"}, sorted(loaded & {*HEAVY, "scipy"})
    table = pd.read_parquet(tmp_path / "t.parquet")
    assert table["condition"].tolist() == conds[21:] and table.shape == (10, 7)  # condition + 6 metrics


def test_a_models_cell_level_h5ad_is_read_without_anndata_or_pandas(tmp_path, small_pb, small_split):
    """evaluate_model on an h5ad of cells (cell-eval's form, obs["target_gene"] categorical) reads obs, var and X with
    h5py: anndata and pandas would cost the job more than its K562-sized file of cells (docs: README, SPEC 7.3)."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    from lsftbench.io import write_h5ad, write_json

    write_h5ad(small_pb.copy(), tmp_path / "pb.h5ad")
    write_json({k: [str(c) for c in v] for k, v in small_split.items()}, tmp_path / "split.json")
    test = [str(c) for c in small_split["test"]]
    x = np.asarray(small_pb.X)[small_pb.obs_names.get_indexer(test)]
    cells = np.repeat(x, 3, axis=0)
    obs = pd.DataFrame({"target_gene": pd.Categorical(np.repeat([c.split("+")[0] for c in test], 3))},
                       index=[f"bc{i}" for i in range(len(cells))])
    ad.AnnData(X=cells, obs=obs, var=pd.DataFrame(index=list(small_pb.var_names))).write_h5ad(tmp_path / "cells.h5ad")
    loaded = _loaded_after(textwrap.dedent(f"""
        from lsftbench.evaluation.scoring import score_model
        scored = score_model({str(tmp_path / "cells.h5ad")!r}, {str(tmp_path / "pb.h5ad")!r}, {str(tmp_path / "split.json")!r},
                             quantity="expression", top_genes=50, keys={{"dataset": "d", "seed": 1, "model": "m"}})
        assert len(scored.conditions) == {len(test)} and abs(scored.table["pearson_r"] - 1).max() < 1e-12
    """))
    assert not loaded & {"anndata", "pandas", "sklearn", "matplotlib", "torch"}, sorted(loaded)
