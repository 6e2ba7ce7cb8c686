"""Leakage audit: published (seed_compat) numbers beside the clean protocol, and their difference."""

import numpy as np
import pandas as pd
import pytest

from lsftbench.report.audit import AUDIT_VALUES, audit_markdown, audit_table


def _perf(values: dict[tuple[str, str], float], offset: float = 0.0) -> pd.DataFrame:
    rows = []
    for (baseline, pct), r in values.items():
        rows.append({"Baseline": baseline, "Top %": pct, "Local Pearson r": r + offset, "Local Pearson r CI low": 0.0,
                     "Baseline Pearson r": r - 0.1, "Improvement (r)": 0.1 + offset, "kNN Pearson r": r - 0.05,
                     "Local L2": 2.0 - offset, "Baseline L2": 2.5, "Improvement (L2)": 0.5 + offset, "Train Size": 3})
    return pd.DataFrame(rows)


def test_audit_difference_is_published_minus_clean():
    clean = _perf({("lpm_selftrained", "1%"): 0.40, ("lpm_selftrained", "5%"): 0.42, ("lpm_k562PertEmb", "1%"): 0.30})
    published = _perf({("lpm_selftrained", "1%"): 0.40, ("lpm_selftrained", "5%"): 0.42}, offset=0.25)
    published["Protocol"] = "seed_compat"
    table = audit_table(clean, published).set_index(["Baseline", "Top %"])
    row = table.loc[("lpm_selftrained", "1%")]
    assert row["Local Pearson r (published, LEAKS TEST DATA)"] == pytest.approx(0.65)
    assert row["Local Pearson r (clean)"] == pytest.approx(0.40)
    assert row["Local Pearson r (published − clean)"] == pytest.approx(0.25)
    assert row["Improvement (r) (published − clean)"] == pytest.approx(0.25)
    assert row["Local L2 (published − clean)"] == pytest.approx(-0.25)
    assert row["Baseline Pearson r (published − clean)"] == pytest.approx(0.0) and row["Note"] == ""
    for v in AUDIT_VALUES:
        np.testing.assert_allclose(table[f"{v} (published − clean)"],
                                   table[f"{v} (published, LEAKS TEST DATA)"] - table[f"{v} (clean)"])
    only = table.loc[("lpm_k562PertEmb", "1%")]
    assert np.isnan(only["Local Pearson r (published, LEAKS TEST DATA)"]) and np.isnan(only["Local Pearson r (published − clean)"])
    assert only["Local Pearson r (clean)"] == pytest.approx(0.30) and only["Note"] == "only under the default protocol"
    assert "Train Size (clean)" not in table.columns and "Protocol" not in table.columns


def test_audit_row_only_under_seed_compat_is_kept():
    clean = _perf({("b", "1%"): 0.4})
    published = _perf({("b", "1%"): 0.4, ("c", "1%"): 0.5})
    table = audit_table(clean, published).set_index("Baseline")
    assert table.loc["c", "Note"] == "only under seed_compat (published protocol)"
    assert np.isnan(table.loc["c", "Local Pearson r (clean)"])


def test_audit_markdown_has_leak_banner():
    table = audit_table(_perf({("b", "1%"): 0.4}), _perf({("b", "1%"): 0.4}, offset=0.1))
    md = audit_markdown(table, "adamson")
    assert md.startswith("## Leakage audit (adamson)")
    banner = md.split("|")[0]
    assert "LEAKS TEST DATA" in banner and "seed_compat" in banner
    assert "| b | 1% | 0.5000 | 0.4000 | 0.1000 |" in md
