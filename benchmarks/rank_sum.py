#!/usr/bin/env python
"""Speed and memory of the streamed rank-sum test (SPEC 7.2) against pdex 0.3.0, on the large synthetic screens.

    python benchmarks/rank_sum.py --scale k562 --workdir /tmp/lsftbench-ranksum --with-pdex [--reuse-pdex]
    python benchmarks/rank_sum.py --scale k562 --n-cells 162000 --workdir /tmp/lsftbench-ranksum
    python benchmarks/rank_sum.py --scale genome --n-cells 400000 --workdir /tmp/lsftbench-ranksum [--reuse-input]

The input is written by :func:`lsftbench.data.synthetic.large.write_large_dataset` (``k562``: 35,610 cells × 5,000
genes, 1,087 perturbations; ``genome``: 8,000 genes, 10,000 perturbations; ``--n-cells``, ``--n-genes`` and
``--n-perts`` override the sizes) into ``--workdir``, or reused from there with ``--reuse-input``. Each method runs
in its own Python process (so that its peak resident memory, ``resource.getrusage``, is its own):

* ours: :func:`lsftbench.evaluation.rank_sum.rank_sum_test` on the file (BLAS/OpenMP threads 1; it is
  single-threaded numpy, the file's next chunk read in a background thread);
* pdex 0.3.0 (``--with-pdex``): the file read into memory with anndata, then
  ``pdex(adata, groupby="condition", mode="ref", reference="ctrl", threads=--threads, is_log1p=True)``; its
  Numba kernels are compiled first on a tiny input (timed separately, not in its figure).

With pdex, the p-values are compared (largest relative difference; entries where one is 0 and the other not)
and so are the DE sets (Benjamini–Hochberg q < 0.05 within each perturbation,
``scipy.stats.false_discovery_control``); ``--reuse-pdex`` compares with pdex's saved output of an earlier run
on the same input instead of running it again (it takes minutes). Every run is appended to
``<workdir>/rank_sum_runs.jsonl``; the Markdown table printed at the end lists all of them with the scaling
exponent of our wall time in the matrix size (cells × genes) against the smallest run. Figures carry the
1-minute load average at their start.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
#: The issue's targets: at least 10× pdex's speed, p-values equal to pdex's to 1e-10 relative.
SPEEDUP_TARGET = 10.0
RTOL_TARGET = 1e-10
FDR = 0.05
DEFAULT_MAX_BYTES = 1 << 30


def _spec(args: argparse.Namespace):
    from dataclasses import replace

    from lsftbench.data.synthetic.large import GENOME_WIDE, K562_SIZED

    spec = {"k562": K562_SIZED, "genome": GENOME_WIDE}[args.scale]
    sizes = {k: v for k, v in (("n_cells", args.n_cells), ("n_genes", args.n_genes), ("n_perts", args.n_perts)) if v}
    if args.n_perts and spec.n_unmeasured is not None:
        sizes["n_unmeasured"] = min(spec.n_unmeasured, args.n_perts // 5)
    return replace(spec, **sizes)


def _beside(prefix: Path, suffix: str) -> Path:
    """``prefix`` + ``suffix`` (a child's output files share its prefix)."""
    return Path(f"{prefix}{suffix}")


def _peak_mb() -> float:
    """This process's peak resident memory (``ru_maxrss``; the parent stays small, so the fork it was started from
    does not raise it)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------------
# child processes
# --------------------------------------------------------------------------------------------------


def child_generate(path: Path, args: argparse.Namespace) -> dict:
    """Write the input (unless ``--reuse-input`` finds it) and describe it."""
    import h5py

    from lsftbench.data.synthetic.large import write_large_dataset

    spec = _spec(args)
    written = None
    if not (args.reuse_input and path.exists()):
        t0 = time.perf_counter()
        written = write_large_dataset(path, spec)
        written["seconds"] = time.perf_counter() - t0
    with h5py.File(path, "r") as f:
        n_cells, n_genes = (int(v) for v in f["X"].attrs["shape"])
        nnz = int(f["X"]["indptr"][-1])
        n_perts = len(f["obs"]["condition"]["categories"]) - 1
    return {"n_cells": n_cells, "n_genes": n_genes, "n_perts": n_perts, "nnz": nnz, "written": written}


def child_ours(path: Path, out: Path, chunk_size: int, max_bytes: int) -> dict:
    import numpy as np

    from lsftbench.evaluation.rank_sum import rank_sum_test

    before = _peak_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    res = rank_sum_test(path, chunk_size=chunk_size, max_bytes=max_bytes)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    np.save(_beside(out, ".npy"), res.pvalue)
    _beside(out, ".names.json").write_text(json.dumps({"conditions": res.conditions, "genes": res.genes}))
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": _peak_mb(), "peak_before_mb": before, "max_bytes": max_bytes}


def child_pdex(path: Path, out: Path, threads: int) -> dict:
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from pdex import pdex

    from lsftbench.data.h5ad import gene_symbols

    kwargs = dict(groupby="condition", mode="ref", reference="ctrl", threads=threads, is_log1p=True)
    rng = np.random.default_rng(0)
    tiny = ad.AnnData(X=sp.csr_matrix(rng.choice([0.0, 0.5, 1.5], size=(12, 3)).astype(np.float32)),
                      obs=pd.DataFrame({"condition": pd.Categorical(["ctrl"] * 6 + ["A+ctrl"] * 6)},
                                       index=[f"c{i}" for i in range(12)]))
    jit = time.perf_counter()
    pdex(tiny, **kwargs)
    jit = time.perf_counter() - jit
    before = _peak_mb()
    read = time.perf_counter()
    adata = ad.read_h5ad(path)
    read = time.perf_counter() - read
    wall, cpu = time.perf_counter(), time.process_time()
    frame = pdex(adata, **kwargs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    symbol = dict(zip(adata.var_names, gene_symbols(adata), strict=True))
    conditions = list(pd.unique(frame["target"].to_numpy()))
    genes = [symbol[g] for g in adata.var_names]
    row = {c: i for i, c in enumerate(conditions)}
    col = {g: j for j, g in enumerate(adata.var_names)}
    p = np.full((len(conditions), len(genes)), np.nan)
    rows = [row[c] for c in frame["target"].to_list()]
    p[rows, [col[g] for g in frame["feature"].to_list()]] = frame["p_value"].to_numpy()
    np.save(_beside(out, ".npy"), p)
    _beside(out, ".names.json").write_text(json.dumps({"conditions": conditions, "genes": genes}))
    return {"wall_s": wall, "cpu_s": cpu, "read_s": read, "jit_s": jit, "peak_mb": _peak_mb(), "peak_before_mb": before}


# --------------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------------


def _run_child(method: str, path: Path, out: Path, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = "1"
    cmd = [sys.executable, __file__, "--child", method, "--input", str(path), "--out-prefix", str(out),
           "--scale", args.scale, "--threads", str(args.threads), "--chunk-size", str(args.chunk_size),
           "--max-bytes", str(args.max_bytes)]
    for flag in ("n_cells", "n_genes", "n_perts"):
        if getattr(args, flag):
            cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.reuse_input:
        cmd.append("--reuse-input")
    load = os.getloadavg()[0]
    subprocess.run(cmd, check=True, env=env)
    result = json.loads(_beside(out, ".json").read_text())
    result["load_1min"] = load
    return result


def _load(out: Path):
    import numpy as np

    names = json.loads(_beside(out, ".names.json").read_text())
    return np.load(_beside(out, ".npy")), names["conditions"], names["genes"]


def compare(ours: Path, pdex: Path) -> dict:
    """Largest relative p-value difference and DE-set agreement (BH q < FDR within each perturbation)."""
    import numpy as np
    from scipy.stats import false_discovery_control

    p, conditions, genes = _load(ours)
    q_raw, q_conditions, q_genes = _load(pdex)
    rows = [q_conditions.index(c) for c in conditions]
    cols = {g: j for j, g in enumerate(q_genes)}
    ref = q_raw[rows][:, [cols[g] for g in genes]]
    both = (p > 0) & (ref > 0)
    rel = np.abs(p - ref)[both] / ref[both]
    de_ours = false_discovery_control(p, axis=1) < FDR
    de_ref = false_discovery_control(ref, axis=1) < FDR
    differ = (de_ours != de_ref).any(axis=1)
    return {
        "max_rel_diff": float(rel.max()) if rel.size else 0.0,
        "identical_share": float(np.mean(p == ref)),
        "zero_mismatch": int(np.sum((p == 0) != (ref == 0))),
        "nan_pdex": int(np.isnan(ref).sum()),
        "de_genes": int(de_ours.sum()),
        "de_entries_differ": int((de_ours != de_ref).sum()),
        "perturbations_de_differ": int(differ.sum()),
    }


def _table(records: list[dict]) -> str:
    ours = [r for r in records if r["method"] == "ours"]
    base = min(ours, key=lambda r: r["n_cells"] * r["n_genes"]) if ours else None
    lines = [
        "| input (cells × genes, perturbations, nnz) | method | wall s | CPU s | peak RSS MB | load | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        notes = []
        if r.get("max_bytes", DEFAULT_MAX_BYTES) != DEFAULT_MAX_BYTES:
            notes.append(f"max_bytes {r['max_bytes'] / 2**20:.0f} MiB")
        if r["method"] == "ours" and base is not None and r is not base:
            size = (r["n_cells"] * r["n_genes"]) / (base["n_cells"] * base["n_genes"])
            if size > 1:
                notes.append(f"scaling exponent {math.log(r['wall_s'] / base['wall_s']) / math.log(size):.2f} "
                             f"vs {base['n_cells']:,} × {base['n_genes']:,}")
        if r["method"] == "pdex":
            notes.append(f"read {r['read_s']:.1f} s, JIT {r['jit_s']:.1f} s (not included)"
                         + ("; an earlier run (--reuse-pdex)" if r.get("reused") else ""))
        if "speedup" in r:
            met = "met" if r["speedup"] >= SPEEDUP_TARGET else "NOT met"
            notes.append(f"pdex / ours = {r['speedup']:.0f}× (target ≥ {SPEEDUP_TARGET:g}×: {met})")
        if "compare" in r:
            c = r["compare"]
            met = "met" if c["max_rel_diff"] <= RTOL_TARGET and not c["zero_mismatch"] else "NOT met"
            notes.append(f"max rel. p diff {c['max_rel_diff']:.1e} (target ≤ {RTOL_TARGET:g}: {met}), identical "
                         f"{c['identical_share']:.1%}, DE genes {c['de_genes']:,}, DE entries differing "
                         f"{c['de_entries_differ']}")
        lines.append(
            f"| {r['n_cells']:,} × {r['n_genes']:,}, {r['n_perts']:,}, {r['nnz']:,} | {r['method']} "
            f"| {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_mb']:.0f} | {r['load_1min']:.2f} | {'; '.join(notes)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=("k562", "genome"), default="k562")
    parser.add_argument("--n-cells", type=int)
    parser.add_argument("--n-genes", type=int)
    parser.add_argument("--n-perts", type=int)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lsftbench-ranksum"))
    parser.add_argument("--reuse-input", action="store_true", help="use the input file of these sizes if present")
    parser.add_argument("--with-pdex", action="store_true", help="also run pdex 0.3.0 and compare")
    parser.add_argument("--reuse-pdex", action="store_true",
                        help="with --with-pdex: compare with pdex's earlier run on this input if saved in --workdir")
    parser.add_argument("--threads", type=int, default=2, help="pdex's Numba threads")
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="rank_sum_test's memory budget")
    parser.add_argument("--child", choices=("generate", "ours", "pdex"), help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out-prefix", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        if args.child == "generate":
            result = child_generate(args.input, args)
        elif args.child == "ours":
            result = child_ours(args.input, args.out_prefix, args.chunk_size, args.max_bytes)
        else:
            result = child_pdex(args.input, args.out_prefix, args.threads)
        _beside(args.out_prefix, ".json").write_text(json.dumps(result))
        return

    # The parent imports nothing heavy: a child's peak memory then is its own.
    args.workdir.mkdir(parents=True, exist_ok=True)
    name = "_".join(str(v) for v in (args.scale, args.n_cells, args.n_genes, args.n_perts) if v)
    path = args.workdir / f"ranksum_{name}.h5ad"
    stem = path.with_suffix("")
    sizes = _run_child("generate", path, _beside(stem, ".input"), args)
    sizes.pop("load_1min")
    written = sizes.pop("written")
    print(f"input: {sizes}" + (f", written in {written['seconds']:.0f} s ({written['bytes'] / 2**30:.2f} GiB)"
                               if written else " (reused)"), flush=True)
    records = []
    ours = _run_child("ours", path, _beside(stem, ".ours"), args)
    records.append({"method": "ours", **sizes, **ours})
    print(f"ours: {ours}", flush=True)
    if args.with_pdex:
        saved = _beside(stem, ".pdex.json")
        if args.reuse_pdex and saved.exists():  # pdex's earlier run on this input
            pdex = {**json.loads(saved.read_text()), "reused": True, "load_1min": float("nan")}
        else:
            pdex = _run_child("pdex", path, _beside(stem, ".pdex"), args)
        print(f"pdex: {pdex}", flush=True)
        records.append({"method": "pdex", **sizes, **pdex})
        records[0]["speedup"] = pdex["wall_s"] / ours["wall_s"]
        records[0]["compare"] = compare(_beside(stem, ".ours"), _beside(stem, ".pdex"))
        print(f"comparison: {records[0]['compare']}", flush=True)
    log = args.workdir / "rank_sum_runs.jsonl"
    with log.open("a") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    every = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    print(_table(every))


if __name__ == "__main__":
    main()
