"""Tests for pretrained gene tables (SPEC section 4): scGPT, scFoundation, GO graph, user tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lsftbench.data.synthetic.checkpoints import (
    write_synthetic_scfoundation_checkpoint,
    write_synthetic_scgpt_checkpoint,
)
from lsftbench.data.synthetic.go_graph import write_synthetic_go_graph
from lsftbench.embeddings import gene_tables as gt
from lsftbench.embeddings import go_graph as go
from lsftbench.embeddings import pretrained as pt

# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _manual_layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)  # biased, as torch.nn.LayerNorm
    return (x - mean) / np.sqrt(var + 1e-5) * w + b


def _write_scgpt(directory: Path, vocab: dict[str, int], n_rows: int, dim: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    state = {
        "encoder.embedding.weight": torch.tensor(rng.normal(size=(n_rows, dim)) * 3 + 1, dtype=torch.float32),
        "encoder.enc_norm.weight": torch.tensor(rng.normal(size=dim), dtype=torch.float32),
        "encoder.enc_norm.bias": torch.tensor(rng.normal(size=dim), dtype=torch.float32),
        "decoder.fc.0.weight": torch.zeros(dim, dim),
    }
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state, directory / "best_model.pt")
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "args.json").write_text(json.dumps({"embsize": dim, "nheads": 2}))
    return {k: v.double().numpy() for k, v in state.items()}


def _assert_equal_up_to_sign(actual: np.ndarray, expected: np.ndarray) -> None:
    for k in range(expected.shape[1]):
        sign = np.sign(actual[:, k] @ expected[:, k]) or 1.0
        np.testing.assert_allclose(actual[:, k], sign * expected[:, k], atol=1e-8, rtol=1e-7)


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    genes = ["TP53", "NA", "GATA1", "MYC", "null", "KLF1", "CD19"]
    frame = pd.DataFrame(rng.normal(size=(len(genes), 4)), index=pd.Index(genes, name="gene"))
    frame.columns = [f"dim_{k}" for k in range(4)]
    return frame


# ------------------------------------------------------------------------------------------
# scGPT
# ------------------------------------------------------------------------------------------


def test_scgpt_rows_are_layer_normed_embedding_rows(tmp_path: Path) -> None:
    vocab = {"GENE_B": 4, "<pad>": 0, "GENE_A": 2, "<cls>": 5, "GENE_C": 1, "<eoc>": 3, "GENE_D": 6}
    state = _write_scgpt(tmp_path / "ckpt", vocab, n_rows=8, dim=6)
    result = pt.extract_scgpt(tmp_path / "ckpt")
    assert list(result.index) == ["GENE_C", "GENE_A", "GENE_B", "GENE_D"]  # id order, specials dropped
    assert result.index.name == "gene" and list(result.columns) == [f"dim_{k}" for k in range(6)]
    assert (result.dtypes == np.float64).all()
    ids = [1, 2, 4, 6]
    expected = _manual_layer_norm(
        state["encoder.embedding.weight"][ids], state["encoder.enc_norm.weight"], state["encoder.enc_norm.bias"]
    )
    np.testing.assert_allclose(result.to_numpy(), expected, rtol=1e-10, atol=1e-10)


def test_scgpt_matches_torch_layer_norm(tmp_path: Path) -> None:
    genes = [f"G{k}" for k in range(20)]
    write_synthetic_scgpt_checkpoint(tmp_path / "s", genes, dim=16, seed=2)
    vocab = json.loads((tmp_path / "s" / "vocab.json").read_text())
    assert {"<pad>", "<cls>", "<eoc>"} <= set(vocab)
    assert json.loads((tmp_path / "s" / "args.json").read_text())["synthetic"] is True
    state = torch.load(tmp_path / "s" / "best_model.pt", weights_only=True)
    norm = torch.nn.LayerNorm(16, eps=1e-5)
    norm.load_state_dict({"weight": state["encoder.enc_norm.weight"], "bias": state["encoder.enc_norm.bias"]})
    ids = torch.tensor([vocab[g] for g in genes])
    expected = norm(state["encoder.embedding.weight"][ids]).detach().double().numpy()
    result = pt.extract_scgpt(tmp_path / "s")
    assert list(result.index) == sorted(genes, key=vocab.__getitem__)
    np.testing.assert_allclose(result.loc[genes].to_numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("problem", ["missing_model", "missing_key", "id_out_of_range", "norm_shape"])
def test_scgpt_errors_name_the_file(tmp_path: Path, problem: str) -> None:
    directory = tmp_path / "ckpt"
    vocab = {"<pad>": 0, "A": 1, "B": 2}
    _write_scgpt(directory, vocab, n_rows=3, dim=4)
    model = directory / "best_model.pt"
    state = torch.load(model, weights_only=True)
    if problem == "missing_model":
        model.unlink()
    elif problem == "missing_key":
        del state["encoder.enc_norm.bias"]
        torch.save(state, model)
    elif problem == "id_out_of_range":
        (directory / "vocab.json").write_text(json.dumps({**vocab, "C": 7}))
    else:
        state["encoder.enc_norm.weight"] = torch.ones(5)
        torch.save(state, model)
    with pytest.raises(ValueError, match=str(model)):
        pt.extract_scgpt(directory)


# ------------------------------------------------------------------------------------------
# scFoundation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("listing", ["gene_name_tsv", "plain_lines"])
def test_scfoundation_drops_three_special_rows(tmp_path: Path, listing: str) -> None:
    genes = ["A1BG", "NA", "ZZZ3", "MT-CO1"]
    emb = np.random.default_rng(0).normal(size=(len(genes) + 3, 5))
    ckpt = {"gene": {"state_dict": {"model.pos_emb.weight": torch.tensor(emb)}}, "cell": {}}
    torch.save(ckpt, tmp_path / "models.ckpt")
    gene_list = tmp_path / "genes.tsv"
    if listing == "gene_name_tsv":
        pd.DataFrame({"index": range(len(genes)), "gene_name": genes}).to_csv(gene_list, sep="\t", index=False)
    else:
        gene_list.write_text("\n".join(genes) + "\n")
    result = pt.extract_scfoundation(tmp_path / "models.ckpt", gene_list)
    assert list(result.index) == genes
    np.testing.assert_array_equal(result.to_numpy(), emb[: len(genes)])


def test_scfoundation_synthetic_and_shape_mismatch(tmp_path: Path) -> None:
    genes = [f"G{k}" for k in range(12)]
    write_synthetic_scfoundation_checkpoint(tmp_path / "m.ckpt", tmp_path / "g.tsv", genes, dim=8)
    assert pt.extract_scfoundation(tmp_path / "m.ckpt", tmp_path / "g.tsv").shape == (12, 8)
    (tmp_path / "short.txt").write_text("\n".join(genes[:-1]) + "\n")
    with pytest.raises(ValueError, match=str(tmp_path / "m.ckpt")) as err:
        pt.extract_scfoundation(tmp_path / "m.ckpt", tmp_path / "short.txt")
    assert "15 rows" in str(err.value) and "11 genes" in str(err.value)
    torch.save({"gene": {"state_dict": {}}}, tmp_path / "empty.ckpt")
    with pytest.raises(ValueError, match="model.pos_emb.weight"):
        pt.extract_scfoundation(tmp_path / "empty.ckpt", tmp_path / "g.tsv")


# ------------------------------------------------------------------------------------------
# GO graph
# ------------------------------------------------------------------------------------------


def _go_fixture(path: Path, n: int = 40, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Symmetric edge list with self-loops, a duplicated row and a heavy bipartite block.

    Returns the (sorted) genes and the expected dense adjacency in igraph semantics.
    """
    rng = np.random.default_rng(seed)
    genes = [f"g{k:02d}" for k in range(n)]
    rows = []
    for i in range(n):
        rows.append((i, i, 1.0))
        for j in rng.choice(n, size=4, replace=False):
            if j != i:
                w = float(rng.uniform(0.1, 1.0))
                rows += [(i, int(j), w), (int(j), i, w)]
    for i in range(0, 6):  # complete bipartite block -> large negative eigenvalue
        for j in range(6, 12):
            rows += [(i, j, 3.0), (j, i, 3.0)]
    rows += [(20, 21, 0.5), (21, 20, 0.5), (20, 21, 0.25), (21, 20, 0.25)]  # duplicates are summed
    order = rng.permutation(len(rows))
    frame = pd.DataFrame([rows[k] for k in order], columns=["s", "t", "importance"])
    frame.insert(0, "source", [genes[k] for k in frame["s"]])
    frame.insert(1, "target", [genes[k] for k in frame["t"]])
    frame[["source", "target", "importance"]].assign(extra="x").to_csv(path, index=False)
    dense = np.zeros((n, n))
    for i, j, w in rows:
        dense[i, j] += w
    return genes, dense


def test_go_embedding_matches_dense_eigh(tmp_path: Path) -> None:
    genes, adjacency = _go_fixture(tmp_path / "go.csv")
    dim = 6
    result = go.go_graph_embedding(tmp_path / "go.csv", dim)
    n = len(genes)
    strength = adjacency.sum(axis=1) - np.diag(adjacency) + 2 * np.diag(adjacency)
    matrix = adjacency + np.diag(strength / (n - 1))
    values, vectors = np.linalg.eigh(matrix)
    top = np.argsort(-np.abs(values))[:dim]
    expected = vectors[:, top] * np.sqrt(np.abs(values[top]))
    assert list(result.index) == genes
    np.testing.assert_allclose(result.attrs["eigenvalues"], values[top], rtol=1e-9)
    assert min(result.attrs["eigenvalues"]) < 0  # a negative eigenvalue is among the top |λ|
    _assert_equal_up_to_sign(result.to_numpy(), expected)
    x = result.to_numpy()
    pivots = np.argmax(np.abs(x), axis=0)
    assert (x[pivots, np.arange(dim)] > 0).all()  # deterministic sign rule
    pd.testing.assert_frame_equal(go.go_graph_embedding(tmp_path / "go.csv", dim), result)


def test_go_adjacency_semantics() -> None:
    # duplicated rows are summed; symmetric input keeps its weights (not doubled); loops on the diagonal
    a = go.go_adjacency(
        3, np.array([0, 1, 0, 1, 2]), np.array([1, 0, 1, 0, 2]), np.array([0.2, 0.2, 0.3, 0.3, 1.0])
    ).toarray()
    np.testing.assert_allclose(a, [[0, 0.5, 0], [0.5, 0, 0], [0, 0, 1.0]])
    with pytest.warns(UserWarning, match="not symmetric"):
        b = go.go_adjacency(3, np.array([0, 1, 1]), np.array([1, 0, 2]), np.array([0.2, 0.7, 0.4])).toarray()
    np.testing.assert_allclose(b, [[0, 0.7, 0], [0.7, 0, 0.4], [0, 0.4, 0]])
    m = go.igraph_augmented_adjacency(a).toarray()
    np.testing.assert_allclose(np.diag(m), [0.25, 0.25, 1.0 + 2.0 / 2])


def test_go_dense_fallback_and_errors(tmp_path: Path) -> None:
    pd.DataFrame({"source": ["a", "b", "b", "c"], "target": ["b", "a", "c", "b"], "importance": [1, 1, 2, 2]}).to_csv(
        tmp_path / "tiny.csv", index=False
    )
    assert go.go_graph_embedding(tmp_path / "tiny.csv", 3).shape == (3, 3)
    with pytest.raises(ValueError, match="between 1 and the number of genes"):
        go.go_graph_embedding(tmp_path / "tiny.csv", 4)
    pd.DataFrame({"source": ["a"], "to": ["b"], "importance": [1.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=str(tmp_path / "bad.csv")):
        go.go_graph_embedding(tmp_path / "bad.csv", 1)


def test_synthetic_go_graph_is_symmetric_with_signal(tmp_path: Path) -> None:
    genes = [f"G{k}" for k in range(120)]
    signal = pd.DataFrame(np.random.default_rng(1).normal(size=(100, 3)), index=genes[:100])
    write_synthetic_go_graph(tmp_path / "go.csv", genes, seed=4, mean_degree=8, signal=signal)
    edges = pd.read_csv(tmp_path / "go.csv")
    assert list(edges.columns) == ["source", "target", "importance"]
    forward = set(zip(edges.source, edges.target, edges.importance, strict=True))
    assert forward == {(t, s, w) for s, t, w in forward}
    assert (edges.importance > 0.1).all() and set(edges.source) == set(genes)
    assert go.go_graph_embedding(tmp_path / "go.csv", 4).shape == (120, 4)


# ------------------------------------------------------------------------------------------
# user tables
# ------------------------------------------------------------------------------------------


def test_user_table_layouts_give_identical_frames(tmp_path: Path, table: pd.DataFrame) -> None:
    table.T.to_csv(tmp_path / "paper.tsv", sep="\t", index=False)  # paper layout: one column per gene
    table.T.rename_axis("dim").to_csv(tmp_path / "labelled.tsv", sep="\t")  # with a dim label column
    table.to_csv(tmp_path / "rows.csv")
    table.to_parquet(tmp_path / "indexed.parquet")
    table.reset_index().to_parquet(tmp_path / "column.parquet", index=False)
    gt.write_gene_table(table, tmp_path / "written.tsv")
    for name in ["paper.tsv", "labelled.tsv", "rows.csv", "indexed.parquet", "column.parquet", "written.tsv"]:
        pd.testing.assert_frame_equal(gt.read_gene_table(tmp_path / name), table, check_exact=True, obj=name)
    explicit = gt.read_gene_table(tmp_path / "rows.csv", layout="genes_as_rows")
    pd.testing.assert_frame_equal(explicit, table)


def test_auto_layout_small_rows_table_with_gene_header(tmp_path: Path, table: pd.DataFrame) -> None:
    wide = pd.DataFrame(np.arange(30.0).reshape(3, 10), index=pd.Index(["A", "B", "C"], name="gene"))
    wide.columns = [f"dim_{k}" for k in range(10)]
    gt.write_gene_table(wide, tmp_path / "wide.tsv")  # more dims than genes, header starts with "gene"
    pd.testing.assert_frame_equal(gt.read_gene_table(tmp_path / "wide.tsv"), wide)
    wide.to_csv(tmp_path / "wide_noname.tsv", sep="\t", index_label="id")
    assert gt.read_gene_table(tmp_path / "wide_noname.tsv", layout="genes_as_rows").shape == (3, 10)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("A\tB\tA\n1\t2\t3\n4\t5\t6\n", "duplicated gene names.*A"),
        ("A\tB\tC\n1\tx\t3\n4\t5\t6\n", "non-numeric value 'x' for gene 'B'"),
        ("A\tB\tC\n1\t\t3\n4\t5\t6\n", "NaN/missing"),
        ("A\tB\tC\n", "zero genes"),
    ],
)
def test_user_table_errors_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        gt.read_gene_table(path, layout="genes_as_columns")
    assert str(path) in str(err.value)


def test_user_table_row_errors(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("gene,d0,d1\nA,1,2\nB,3,4\nA,5,6\n")
    with pytest.raises(ValueError, match=r"dup\.csv.*duplicated gene names \(e\.g\. A\)"):
        gt.read_gene_table(tmp_path / "dup.csv")
    (tmp_path / "nan.csv").write_text("gene,d0,d1\nA,1,NaN\nB,3,4\n")
    with pytest.raises(ValueError, match=r"nan\.csv.*gene 'A'"):
        gt.read_gene_table(tmp_path / "nan.csv")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"garbage\.parquet"):
        gt.read_gene_table(tmp_path / "garbage.parquet")
    with pytest.raises(ValueError, match=r"missing\.tsv.*does not exist"):
        gt.read_gene_table(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="unknown layout"):
        gt.read_gene_table(tmp_path / "dup.csv", layout="sideways")
