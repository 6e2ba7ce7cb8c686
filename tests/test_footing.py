"""Known answers from the cells for the DE-gene metrics (SPEC 7.2) and the sampling-noise ceiling (SPEC 7 (b)).

Part 1 recomputes every DE-gene metric with numpy/scipy only (Welch's t-test per gene with
``scipy.stats.ttest_ind(equal_var=False)``, Benjamini-Hochberg with ``scipy.stats.false_discovery_control``,
the sets, top-N lists, direction, Spearman, Pearson and MSE written from the SPEC text) and compares them with
the package's numbers on all genes, on a gene-table baseline's subset of the genes (60 %), with
``metrics.exclude_target_gene`` and with both, on data built so that N (50, 100) exceeds the DE genes of several
perturbations and N = 100 every gene left on the subset, so that one perturbation has more than 100 DE genes of
160 (the old 100-gene significance list ran short there after restriction or exclusion), and so that the
knocked-down target gene is the most significant gene.

Part 2 checks the noise ceiling against what it claims to bound: a perfect model (the true population mean
change) scored against the observed pseudobulk Δ, with and without the target gene.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from lsftbench.data.conditions import target_positions
from lsftbench.data.pseudobulk import pseudobulk
from lsftbench.evaluation.comparison import ComparisonSettings, GeneReference, comparison_genes, score_on_genes
from lsftbench.evaluation.de import DEResults, de_metrics, differential_expression_from_files
from lsftbench.evaluation.noise_ceiling import noise_ceiling
from lsftbench.io import write_h5ad
from lsftbench.labels import Labels

FDR = 0.05
TOP_N = (20, 50, 100)
EXACT = ("de_overlap", "de_top20", "de_top50", "de_top100", "de_direction", "n_de")  # ratios of gene counts
CLOSE = ("de_spearman", "pearson_de_delta", "mse_de")


def _write(path, x, conditions, genes):
    """A GEARS-format h5ad (float32 CSR X, obs["condition"], var["gene_name"])."""
    a = ad.AnnData(
        X=sp.csr_matrix(x.astype(np.float32)),
        obs=pd.DataFrame({"condition": pd.Categorical(conditions)}, index=[f"c{i}" for i in range(len(conditions))]),
        var=pd.DataFrame({"gene_name": genes}, index=[f"ENSG{i:011d}" for i in range(len(genes))]),
    )
    write_h5ad(a, path)
    return path


# ---------------------------------------------------------------------------------------------------
# Part 1: DE-gene metrics from the cells (SPEC 7.2)

N_GENES = 160  # more than the largest N: the old 100-gene order then runs short after restriction or exclusion
GENES = [f"G{i:03d}" for i in range(N_GENES)]
ZERO_GENE = N_GENES - 1  # zero in every cell: p = 1 by the SPEC's rule
# condition → (measured target genes knocked down, number of other genes with a strong effect)
DESIGN = {
    "G000+ctrl": (["G000"], 158),  # every gene but the zero one is DE: |D| = 159; on the subset 96, 95 without target
    "G010+ctrl": (["G010"], 30),  # |D| ≈ 31 < 50
    "G020+ctrl": (["G020"], 110),  # |D| > 100 on all genes, < 100 on the subset
    "G030+ctrl": (["G030"], 0),  # only the target: |D| < 3, NaN
    "G040+ctrl": (["G040"], 2),  # |D| = 3: defined; without the target 2: NaN
    "G050+G060": (["G050", "G060"], 60),  # a double: two targets to leave out
    "ZZZ9+ctrl": ([], 25),  # target not measured: nothing to leave out
    "G070+ctrl": (["G070"], 10),
}
N_SUBSET = 96  # the gene-table baseline's genes (60 %): fewer than N = 100
SUBSET_IN = ["G000", "G010", "G020", "G040", "G050"]
SUBSET_OUT = ["G030", "G060", "G070"]


@pytest.fixture(scope="module")
def de_data(tmp_path_factory):
    rng = np.random.default_rng(20240607)
    base = rng.uniform(2.5, 4.5, N_GENES)
    sd = rng.uniform(0.3, 0.6, N_GENES)
    base[ZERO_GENE] = sd[ZERO_GENE] = 0.0
    n_ctrl, n_pert = 300, 40
    blocks = [base + sd * rng.standard_normal((n_ctrl, N_GENES))]
    labels = ["ctrl"] * n_ctrl
    affected = {}
    for condition, (targets, n_affected) in DESIGN.items():
        mu, s = base.copy(), sd.copy()
        tpos = [GENES.index(g) for g in targets]
        free = [i for i in range(ZERO_GENE) if i not in tpos]
        hit = rng.choice(free, n_affected, replace=False)
        affected[condition] = hit
        mu[hit] += rng.choice([-1.0, 1.0], n_affected) * rng.uniform(0.6, 1.2, n_affected)
        mu[tpos] *= 0.1  # knock-down: far the smallest p of the perturbation
        s[tpos] *= 0.5
        blocks.append(mu + s * rng.standard_normal((n_pert, N_GENES)))
        labels += [condition] * n_pert
    x = np.clip(np.vstack(blocks), 0.0, None).astype(np.float32)
    order = rng.permutation(len(labels))  # conditions interleaved in the file
    x, labels = x[order], np.asarray(labels)[order]
    d = tmp_path_factory.mktemp("footing_de")
    path = _write(d / "perturb_processed.h5ad", x, list(labels), GENES)
    pb = pseudobulk(path)
    pb_path = d / "pseudobulk.h5ad"
    write_h5ad(pb, pb_path)
    de = differential_expression_from_files(pb_path, path)
    de.save(d / "de.h5")
    conditions = list(DESIGN)[::-1]  # another order than the file's
    de = DEResults.load(d / "de.h5", conditions=conditions)

    # the gene-table baseline's genes, in its own (table) order
    g40_hits = [GENES[i] for i in affected["G040+ctrl"]]
    pool = [g for g in GENES if g not in SUBSET_IN + SUBSET_OUT + g40_hits]
    chosen = SUBSET_IN + g40_hits + list(rng.choice(pool, N_SUBSET - len(SUBSET_IN) - len(g40_hits), replace=False))
    table_genes = list(rng.permutation(chosen))

    # predictions over every gene: a noisy shrunken copy of the cells' change (no ties in |Δ̂|)
    cell_delta = {c: x[labels == c].astype(np.float64).mean(0) - x[labels == "ctrl"].astype(np.float64).mean(0)
             for c in conditions}
    pred = np.stack([0.6 * cell_delta[c] + rng.normal(0, 0.3, N_GENES) for c in conditions], axis=1)  # genes × p
    pb_x = np.asarray(pb.X, dtype=np.float64)
    rows = list(pb.obs_names)
    observed = np.stack([pb_x[rows.index(c)] - pb_x[rows.index("ctrl")] for c in conditions], axis=1)
    return {"x": x.astype(np.float64), "labels": labels, "pb": pb, "de": de, "conditions": conditions,
            "table_genes": table_genes, "pred": pred, "observed": observed}


def reference_de_metrics(x, labels, conditions, scored, pred, exclude_target_gene):
    """Every DE-gene metric of SPEC 7.2 from the cells, numpy/scipy only.

    ``scored``: the genes scored on (symbols, in the order of ``pred``'s rows); ``pred``: genes × conditions.
    """
    ctrl = x[labels == "ctrl"]
    col = np.array([GENES.index(g) for g in scored])  # measured column of each scored gene
    out = {name: np.full(len(conditions), np.nan) for name in EXACT + CLOSE}
    for i, condition in enumerate(conditions):
        cells = x[labels == condition]
        # Welch's t-test per gene, two-sided, on the log-normalised cells; zero variance in both groups: p = 1
        res = stats.ttest_ind(cells, ctrl, axis=0, equal_var=False)
        p, t = np.array(res.pvalue), np.array(res.statistic)
        flat = (cells.var(axis=0) == 0) & (ctrl.var(axis=0) == 0)
        p[flat], t[flat] = 1.0, 0.0
        assert np.isfinite(p).all() and flat.sum() == 1
        # BH within the perturbation, across the measured genes (the DE results are the data's, computed once on
        # every gene; a comparison gene set then keeps its genes' q-values: DEResults.restrict's docstring)
        q = stats.false_discovery_control(p)
        # guards that make an exact comparison meaningful: no q at the threshold, no near-tie in p
        assert (np.abs(q / FDR - 1) > 1e-6).all()
        sorted_p = np.sort(p[p < 1])
        assert (np.diff(np.log(sorted_p)) > 1e-7).all()
        delta = cells.mean(0) - ctrl.mean(0)
        targets = {g for g in condition.split("+") if g != "ctrl"}
        # positions (rows of pred) of the allowed genes: the scored genes minus the target(s) when excluded
        allowed = [j for j, g in enumerate(scored) if not (exclude_target_gene and g in targets)]
        de_set = [j for j in allowed if q[col[j]] < FDR]
        n_de = len(de_set)
        out["n_de"][i] = n_de
        pr = pred[:, i]
        by_pred = sorted(allowed, key=lambda j: (-abs(pr[j]), j))  # largest |Δ̂| first (ties: gene order)
        # smallest p first; among equal p larger |t|, then gene order (SPEC silent on ties: DEResults docstring)
        by_p = sorted(allowed, key=lambda j: (p[col[j]], -abs(t[col[j]]), col[j]))
        if n_de >= 3:  # SPEC: NaN when |D_t| < 3
            out["de_overlap"][i] = len(set(by_pred[:n_de]) & set(de_set)) / n_de
            for n in TOP_N:
                # SPEC: "the same [as de_overlap, cell-eval's overlap_at_N] with the N genes of smallest p". When
                # fewer than N genes are DE the SPEC does not spell it out; we follow the code's docstring/table
                # note ("the N DE genes of smallest p") and cell-eval 0.8.2's overlap_at_N (k_eff = min(N, |D_t|)):
                # the min(N, |D_t|) DE genes of smallest p against as many genes of largest |Δ̂|.
                n_eff = min(n, n_de)
                top = by_p[:n_eff]
                assert set(top) <= set(de_set)  # BH is monotone in p: the DE set is a prefix of the p order
                out[f"de_top{n}"][i] = len(set(top) & set(by_pred[:n_eff])) / n_eff
            out["de_direction"][i] = np.mean([np.sign(pr[j]) == np.sign(delta[col[j]]) for j in de_set])
            out["de_spearman"][i] = stats.spearmanr(pr[de_set], delta[col[de_set]]).statistic
        # GEARS's metrics on a file without uns["top_non_dropout_de_20"]: the 20 genes of smallest p (SPEC). On a
        # gene subset / without the target the SPEC is silent; we follow DEResults.restrict and de_metrics's
        # docstrings: the 20 genes of smallest p among all measured genes, then only those scored and not excluded
        # (not refilled to 20); NaN below 3 genes (the code's MIN_DE_GENES).
        top20 = sorted(range(N_GENES), key=lambda g: (p[g], -abs(t[g]), g))[:20]
        where = {c: j for j, c in enumerate(col)}
        gears = [where[g] for g in top20 if g in where and where[g] in allowed]
        if len(gears) >= 3:
            a, b = pr[gears], delta[col[gears]]
            out["pearson_de_delta"][i] = np.corrcoef(a, b)[0, 1]
            out["mse_de"][i] = np.mean((a - b) ** 2)
    return out


CASES = [("all", False), ("all", True), ("subset", False), ("subset", True)]


def _scored(de_data, case):
    """(method's genes, genes to score on): every gene, or the gene table's 96 in its order and their
    comparison set (dataset order)."""
    if case == "all":
        return GENES, GENES
    own = de_data["table_genes"]
    return own, comparison_genes(GENES, [own])


@pytest.mark.parametrize(("case", "exclude"), CASES, ids=[f"{c}-{'excl' if e else 'incl'}" for c, e in CASES])
def test_de_metrics_equal_an_independent_recomputation_from_the_cells(de_data, case, exclude):
    conditions, de = de_data["conditions"], de_data["de"]
    own, subset = _scored(de_data, case)
    own_rows = [GENES.index(g) for g in own]
    pred, observed = de_data["pred"][own_rows], de_data["observed"][own_rows]
    sub_rows = [GENES.index(g) for g in subset]
    ref = reference_de_metrics(de_data["x"], de_data["labels"], conditions, subset, de_data["pred"][sub_rows], exclude)

    # the report's path: score_on_genes (select → restrict → target_positions → exclusion)
    ctrl_mean = np.asarray(de_data["pb"].X, dtype=np.float64)[0]
    reference = GeneReference(Labels(GENES, name="gene"), ctrl_mean, np.zeros(N_GENES))
    settings = ComparisonSettings(exclude_target_gene=exclude, de_fdr=FDR)
    got, _ = score_on_genes(pred, observed, conditions, own, subset, reference, conditions, settings, de)
    # and de_metrics called directly
    here = de.select(conditions).restrict(subset)
    targets = target_positions(conditions, Labels(subset, name="gene"))
    direct = de_metrics(de_data["pred"][sub_rows], de_data["observed"][sub_rows], here, FDR,
                        exclude=targets if exclude else None)
    for values in (got, direct):
        for name in EXACT:
            np.testing.assert_array_equal(values[name], ref[name], err_msg=f"{case} {exclude} {name}")
        for name in CLOSE:
            np.testing.assert_allclose(values[name], ref[name], rtol=0, atol=1e-10, err_msg=f"{case} {exclude} {name}")

    # the data exercise what the fix is about (DE top-N kept only the 100 genes of smallest p, -1 padded: here
    # G000 has 158 DE genes without its target but only 99 of those 100 left, and on the subset 57 of them
    # against 95 DE genes, so the padding was read as a gene): N beyond the DE genes and the genes left
    n_allowed = np.array([sum(1 for g in subset if not (exclude and g in c.split("+"))) for c in conditions])
    defined = ~np.isnan(ref["de_overlap"])
    assert (defined & (ref["n_de"] < 50)).sum() >= 3  # N = 50 exceeds the DE genes
    g000 = conditions.index("G000+ctrl")
    assert ref["n_de"][g000] == sum(g != GENES[ZERO_GENE] for g in subset) - exclude  # every gene but the zero one
    if case == "subset":
        assert (n_allowed < 100).all()  # N = 100 exceeds every gene left
    g040 = conditions.index("G040+ctrl")
    assert np.isnan(ref["de_overlap"][g040]) == exclude  # |D| = 3 with the target, 2 without
    assert np.isnan(ref["de_overlap"][conditions.index("G030+ctrl")])


def test_target_exclusion_changes_the_de_metrics(de_data):
    """The knocked-down target is the most significant gene: leaving it out changes the DE sets and top-N lists."""
    conditions = de_data["conditions"]
    for case in ("all", "subset"):
        _, subset = _scored(de_data, case)
        rows = [GENES.index(g) for g in subset]
        incl, excl = (reference_de_metrics(de_data["x"], de_data["labels"], conditions, subset, de_data["pred"][rows], e)
                      for e in (False, True))
        measured_target = np.array([any(g in subset for g in c.split("+")) for c in conditions])
        np.testing.assert_array_equal(incl["n_de"] - excl["n_de"],
                                      [sum(g in subset for g in c.split("+")) for c in conditions])
        assert measured_target.sum() >= 3
        changed = ~np.isclose(incl["de_top20"], excl["de_top20"], equal_nan=True)
        changed |= ~np.isclose(incl["pearson_de_delta"], excl["pearson_de_delta"], equal_nan=True)
        assert changed[measured_target].any()


# ---------------------------------------------------------------------------------------------------
# Part 2: the noise ceiling against a perfect model (SPEC 7 (b))

NC_GENES, NC_PERTS, NC_CTRL = 300, 30, 1500
#: Tolerance on mean r over the 30 perturbations (perfect model vs ceiling). Per perturbation, r over G = 300
#: genes has a sampling SD of about (1 − r²)/√G (0.01-0.04 here), and the ceiling estimate (from the same cells)
#: errs by a similar amount, so even for independent errors the difference of the means over 30 perturbations
#: has an SD ≤ 0.008 (in fact the two err together: over 8 other data seeds the mean difference had SD 0.003,
#: |max| 0.006). The known biases are smaller: the shared x̄_ctrl noise the SPEC ignores (n_t/n_ctrl ≈ 2 % of
#: the noise variance, about +0.003 on √ρ) and Jensen terms O(1/G). 0.015 ≈ 2 conservative SD + the biases.
NC_TOL = 0.015


@pytest.fixture(scope="module")
def ceiling_data(tmp_path_factory):
    """Cells = μ_t + σ_g ε, moderate signal-to-noise (ρ ≈ 0.5-0.85), each target knocked down by 3."""
    rng = np.random.default_rng(77)
    genes = [f"N{i:03d}" for i in range(NC_GENES)]
    mu_ctrl = rng.uniform(6.0, 8.0, NC_GENES)
    sigma = rng.uniform(0.4, 0.8, NC_GENES)
    perts = [f"{genes[k]}+ctrl" for k in range(NC_PERTS)]
    n_cells = rng.integers(16, 41, NC_PERTS)
    blocks = [mu_ctrl + sigma * rng.standard_normal((NC_CTRL, NC_GENES))]
    labels = ["ctrl"] * NC_CTRL
    truth = np.empty((NC_GENES, NC_PERTS))
    for k, (condition, n) in enumerate(zip(perts, n_cells, strict=True)):
        mu = mu_ctrl + rng.uniform(0.1, 0.25) * rng.standard_normal(NC_GENES)
        mu[k] = mu_ctrl[k] - 3.0  # the knock-down: an outlier of the change vector
        s = sigma.copy()
        s[k] = 0.2
        truth[:, k] = mu - mu_ctrl  # the population mean change: what a perfect model predicts
        blocks.append(mu + s * rng.standard_normal((n, NC_GENES)))
        labels += [condition] * n
    x = np.vstack(blocks)
    assert x.min() > 0  # no clipping: the population means are exactly mu
    order = rng.permutation(len(labels))
    x, labels = x[order].astype(np.float32), np.asarray(labels)[order]
    path = _write(tmp_path_factory.mktemp("footing_ceiling") / "perturb_processed.h5ad", x, list(labels), genes)
    pb = pseudobulk(path)
    pb_x = np.asarray(pb.X, dtype=np.float64)
    rows = list(pb.obs_names)
    observed = np.stack([pb_x[rows.index(c)] - pb_x[rows.index("ctrl")] for c in perts], axis=1)
    return {"path": path, "pb": pb, "perts": perts, "genes": genes, "truth": truth, "observed": observed,
            "x": x.astype(np.float64), "labels": labels}


def _pearson(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def _own_split_half(data, exclude, replicates, seed):
    """Our own split-half r per perturbation (numpy): mean and SD over random disjoint halves (⌊n/2⌋, ⌈n/2⌉)."""
    rng = np.random.default_rng(seed)
    ctrl = data["x"][data["labels"] == "ctrl"].mean(0)
    means, sds = [], []
    for k, condition in enumerate(data["perts"]):
        cells = data["x"][data["labels"] == condition]
        keep = np.arange(NC_GENES) != k if exclude else np.ones(NC_GENES, dtype=bool)
        n = len(cells)
        r = []
        for _ in range(replicates):
            perm = rng.permutation(n)
            h1, h2 = cells[perm[: n // 2]].mean(0) - ctrl, cells[perm[n // 2:]].mean(0) - ctrl
            r.append(_pearson(h1[keep], h2[keep]))
        means.append(np.mean(r))
        sds.append(np.std(r, ddof=1))
    return np.array(means), np.array(sds)


@pytest.mark.parametrize("exclude", [False, True], ids=["target-included", "target-excluded"])
def test_perfect_model_scores_the_noise_ceiling(ceiling_data, exclude):
    """A perfect model's mean Pearson r against the observed Δ is the ceiling's √ρ (within NC_TOL), with and
    without the knocked-down target gene; the ceiling's split-half r equals our own within Monte-Carlo error."""
    data, reps = ceiling_data, 60
    frame = noise_ceiling(data["path"], data["pb"], replicates=reps, seed=4, conditions=data["perts"],
                          top_n=100, exclude_target_gene=exclude).set_index("condition").loc[data["perts"]]
    keep = [np.arange(NC_GENES) != k if exclude else slice(None) for k in range(NC_PERTS)]
    perfect = np.array([_pearson(data["truth"][keep[k], k], data["observed"][keep[k], k]) for k in range(NC_PERTS)])
    ceiling = frame["pearson_r"].to_numpy(dtype=float)
    assert np.isfinite(ceiling).all() and 0.6 < ceiling.mean() < 0.97  # moderate signal-to-noise
    assert abs(perfect.mean() - ceiling.mean()) < NC_TOL, (perfect.mean(), ceiling.mean())
    # per perturbation the two agree within 4 SD of a difference of two r's over G genes, √2·(1 − r²)/√G
    assert (np.abs(perfect - ceiling) < 4 * np.sqrt(2) * (1 - ceiling**2) / np.sqrt(NC_GENES)).all()
    # the split-half ingredient against our own halves: |difference| < 5 SE of the two Monte-Carlo means
    ours, sd = _own_split_half(data, exclude, replicates=200, seed=9)
    half = frame["pearson_r_half"].to_numpy(dtype=float)
    np.testing.assert_array_less(np.abs(half - ours), 5 * sd * np.sqrt(1 / 200 + 1 / reps) + 1e-12)
    np.testing.assert_allclose(ceiling, np.sqrt(np.clip(2 * half / (1 + half), 0, None)), rtol=1e-12)


def test_ceiling_without_the_target_is_the_ceiling_over_the_other_genes(ceiling_data):
    """exclude_target_gene drops exactly the target's row (the same halves scored on the other genes), and it
    matters here: with the knock-down left in, the ceiling (and the perfect model) is higher."""
    data, kw = ceiling_data, dict(replicates=20, seed=4, conditions=ceiling_data["perts"], top_n=100)
    incl = noise_ceiling(data["path"], data["pb"], **kw).set_index("condition")
    excl = noise_ceiling(data["path"], data["pb"], exclude_target_gene=True, **kw).set_index("condition")
    for k in (0, 7, 29):
        others = [g for j, g in enumerate(data["genes"]) if j != k]
        alone = noise_ceiling(data["path"], data["pb"], genes=others, **kw).set_index("condition")
        condition = data["perts"][k]
        for name in ("pearson_r", "pearson_r_half", "l2", "mae"):
            assert excl.loc[condition, name] == pytest.approx(alone.loc[condition, name], rel=1e-10, abs=1e-12), name
        assert excl.loc[condition, "n_genes"] == NC_GENES  # the scored gene set; the target is left out per row
    gap = incl["pearson_r"].mean() - excl["pearson_r"].mean()
    perfect_gap = np.mean([
        _pearson(data["truth"][:, k], data["observed"][:, k])
        - _pearson(np.delete(data["truth"][:, k], k), np.delete(data["observed"][:, k], k)) for k in range(NC_PERTS)
    ])
    assert gap > 0.03 and perfect_gap > 0.03, (gap, perfect_gap)
    assert abs(gap - perfect_gap) < NC_TOL
