"""Cost of the evaluation on a K562-sized input: the tables' statistics and the sampling-noise ceiling.

**Statistics** (bootstrap CIs, Wilcoxon tests, BH, Wilson).

The per-perturbation frame of one (dataset, protocol) as ``dataset_tables`` builds it, at the size of
Replogle K562 essential under the GEARS simulation split: 272 test perturbations x 9 baselines x
3 K x 2 split seeds (14,688 rows, every metric family). The tables are built twice: with the
configured resamples (``statistics.n_resamples``, default 2000) and with one resample, so the
difference is the bootstrap's cost; the Wilcoxon/BH/Wilson part is in both. Beside them, the other
work of a ``dataset_tables`` job at this size: the rank metrics of every (seed, baseline, K, method).

**Noise ceiling** (``--noise-ceiling``): ``lsftbench.evaluation.noise_ceiling.noise_ceiling`` on the K562-sized
h5ad of ``lsftbench.data.synthetic.large`` (35,610 cells x 5,000 genes, 1,087 perturbations; generated
into ``--workdir`` unless present), every perturbation, 20 replicates: wall, CPU and the peak RSS of
this process.

    python benchmarks/evaluation_cost.py [--n-resamples 2000] [--noise-ceiling --workdir /tmp/lsftbench-eval]

Prints Markdown tables (seconds in this one process, BLAS threads = 1).
"""

from __future__ import annotations

import argparse
import os
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lsftbench.evaluation.statistics import StatsSettings  # noqa: E402
from lsftbench.report.tables import (  # noqa: E402
    FAMILIES,
    de_metrics_table,
    fraction_improved_table,
    per_perturbation,
    performance_table,
)

#: Every metric family of the tables (SPEC 7, 7.2), and whether higher is better (scores in 0.1–0.6, else 1–5).
METRICS = {f.name: f.higher_is_better for f in FAMILIES}


def k562_sized_frame(n_test: int = 272, n_baselines: int = 9, pcts=(1.0, 5.0, 10.0), seeds=(1, 2)) -> pd.DataFrame:
    """A per-perturbation frame with the shape and columns of a K562-sized dataset_tables input."""
    rng = np.random.default_rng(0)
    lsft_rows, global_rows = [], []
    for seed in seeds:
        conditions = [f"G{i:04d}+ctrl" for i in range(n_test)]
        for b in range(n_baselines):
            baseline = f"baseline_{b}"
            glob = {m: rng.uniform(0.1, 0.6, n_test) if higher else rng.uniform(1, 5, n_test)
                    for m, higher in METRICS.items()}
            global_rows.append(pd.DataFrame({"seed": seed, "baseline": baseline, "condition": conditions, **glob,
                                             "n_genes": 5000, "synthetic_stand_in": ""}))
            for pct in pcts:
                frame = {"seed": seed, "baseline": baseline, "top_pct": pct, "condition": conditions}
                for method in ("local", "knn"):
                    for m in METRICS:
                        frame[f"{method}_{m}"] = glob[m] + rng.normal(0, 0.05, n_test)
                frame.update(train_size=int(np.ceil(734 * pct / 100)), n_train_candidates=734,
                             mean_similarity=rng.uniform(0.3, 0.9, n_test))
                lsft_rows.append(pd.DataFrame(frame))
    return per_perturbation(pd.concat(lsft_rows, ignore_index=True), pd.concat(global_rows, ignore_index=True))


def build_tables(df: pd.DataFrame, stats: StatsSettings) -> None:
    for seed in [None, *sorted(set(df["seed"]))]:
        for test_set in ("common", "per_baseline"):
            performance_table(df, seed=seed, test_set=test_set, stats=stats, top_genes=1000)
        fraction_improved_table(df, seed=seed, stats=stats)
        de_metrics_table(df, seed=seed, stats=stats, top_genes=1000)


def timed(df: pd.DataFrame, stats: StatsSettings) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    build_tables(df, stats)
    return time.perf_counter() - wall, time.process_time() - cpu


def rank_cost(n_genes: int = 5000, n_test: int = 272, n_sets: int = 9 * 3 * 2 * 2 + 9 * 2) -> tuple[float, float]:
    """Rank metrics of every (seed, baseline, K, LSFT/kNN) and (seed, baseline, global) prediction set."""
    from lsftbench.evaluation.metrics import rank_metrics

    rng = np.random.default_rng(1)
    pred, obs = rng.normal(size=(n_genes, n_test)), rng.normal(size=(n_genes, n_test))
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n_sets):
        rank_metrics(pred, obs)
    return time.perf_counter() - wall, time.process_time() - cpu


def noise_ceiling_cost(workdir: str, replicates: int = 20) -> str:
    """Time and peak memory of the noise ceiling on the K562-sized input."""
    import resource
    from pathlib import Path

    from lsftbench.data.pseudobulk import pseudobulk
    from lsftbench.data.synthetic.large import K562_SIZED, write_large_dataset
    from lsftbench.evaluation.noise_ceiling import noise_ceiling

    path = Path(workdir) / "k562_sized.h5ad"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_large_dataset(path, K562_SIZED)
    pb = pseudobulk(path)
    conditions = [c for c in pb.obs_names if c != "ctrl"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall, cpu = time.perf_counter(), time.process_time()
    noise_ceiling(path, pb, replicates=replicates, seed=0, conditions=conditions)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (f"| noise ceiling, {len(conditions):,} perturbations x {replicates} replicates, cells read once "
            f"| {wall:.2f} | {cpu:.2f} | "
            f"{peak:.0f} (before: {before / 1024:.0f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-resamples", type=int, default=2000)
    parser.add_argument("--noise-ceiling", action="store_true")
    parser.add_argument("--workdir", default="/tmp/lsftbench-eval")
    args = parser.parse_args()
    wall, cpu = time.perf_counter(), time.process_time()
    df = k562_sized_frame()
    build = (time.perf_counter() - wall, time.process_time() - cpu)
    full = timed(df, StatsSettings(n_resamples=args.n_resamples))
    one = timed(df, StatsSettings(n_resamples=1))
    print(f"K562-sized per-perturbation frame: {len(df):,} rows (272 tests x 9 baselines x 3 K x 2 seeds)\n")
    print("| step | wall (s) | CPU (s) |\n|---|---:|---:|")
    print(f"| build and join the frame | {build[0]:.2f} | {build[1]:.2f} |")
    print(f"| all tables (pooled + 2 seeds: common + per-baseline, fraction improved, DE metrics), {args.n_resamples} resamples "
          f"| {full[0]:.2f} | {full[1]:.2f} |")
    print(f"| the same with 1 resample (no bootstrap cost) | {one[0]:.2f} | {one[1]:.2f} |")
    print(f"| bootstrap CIs alone (difference) | {full[0] - one[0]:.2f} | {full[1] - one[1]:.2f} |")
    ranks = rank_cost()
    print(f"| for comparison: rank metrics of the 126 prediction sets (5,000 genes x 272 tests) | {ranks[0]:.2f} "
          f"| {ranks[1]:.2f} |")
    if args.noise_ceiling:
        print("\n| step | wall (s) | CPU (s) | peak RSS (MB) |\n|---|---:|---:|---:|")
        print(noise_ceiling_cost(args.workdir))


if __name__ == "__main__":
    main()
