# Config validation, input functions and target lists shared by all rules.
import sys
from pathlib import Path

from snakemake.utils import validate

SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from lsftbench import workflow_config as wc  # noqa: E402

validate(config, "../config/schema.yaml")
wc.check_config(config)

RESULTS = "results"
DATASETS = wc.benchmarked_datasets(config)
TOP_PCTS = [wc.pct_label(p) for p in config["top_pcts"]]
N_CHUNKS = config["lsft"]["test_chunks"]
TABLE_NAMES = ["lsft_performance", "fraction_improved", "summary"]


wildcard_constraints:
    dataset="[A-Za-z0-9_\-]+",
    baseline="[A-Za-z0-9_\-]+",
    pct="[0-9.]+",
    chunk="[0-9]+",
    side="gene|pert",
    n_chunks="[0-9]+",


def dataset_config(dataset):
    return config["datasets"][dataset]


def perturb_data(wildcards):
    """The dataset's perturb_processed.h5ad: a local file, the synthetic generator or a download."""
    ds = dataset_config(wildcards.dataset)
    if ds["source"] == "local":
        return ds["path"]
    if ds["source"] == "gears":
        return f"resources/gears/{wildcards.dataset}/perturb_processed.h5ad"
    return f"{RESULTS}/data/{wildcards.dataset}/perturb_processed.h5ad"


def go_filter_inputs(wildcards):
    """GO resources for the GEARS GO filter before the split (SPEC 2 step 1), when it applies."""
    mode = config["go_filter"]
    if mode == "off" or (mode == "auto" and dataset_config(wildcards.dataset)["source"] != "gears"):
        return {}
    return {
        "gene2go": "resources/gears/gene2go_all.pkl",
        "essential": "resources/gears/essential_all_data_pert_genes.pkl",
    }


def split_file(wildcards):
    ds = dataset_config(wildcards.dataset)
    return ds["split_file"] if ds.get("split_file") else []


def baseline_spec(wildcards):
    return config["baselines"][wildcards.baseline]


def embedding_inputs(wildcards):
    """Pseudobulk and split of the dataset, plus what the baseline's embeddings are built from."""
    spec = baseline_spec(wildcards)
    inputs = {
        "pseudobulk": f"{RESULTS}/{wildcards.dataset}/pseudobulk.h5ad",
        "split": f"{RESULTS}/{wildcards.dataset}/split.json",
    }
    pert = spec.get("pert", {})
    if pert.get("type") == "dataset_pca":
        inputs["source_pseudobulk"] = f"{RESULTS}/{pert['dataset']}/pseudobulk.h5ad"
    for side in ("gene", "pert"):
        part = spec.get(side, {})
        kind = part.get("type")
        if kind == "table":
            inputs[f"{side}_table"] = part["path"]
        elif kind in ("scgpt", "scfoundation"):
            inputs[f"{side}_table"] = f"{RESULTS}/resources/gene_tables/{wildcards.baseline}.{side}.pretrained.tsv"
        elif kind == "go_graph":
            inputs[f"{side}_table"] = f"{RESULTS}/resources/gene_tables/{wildcards.baseline}.{side}.go_graph.tsv"
    return inputs


def pretrained_inputs(wildcards):
    """Checkpoint files of an scGPT / scFoundation embedding ("synthetic": the generated stand-in)."""
    part = config["baselines"][wildcards.baseline][wildcards.side]
    synthetic = part["checkpoint"] == "synthetic"
    if part["type"] == "scgpt":
        root = f"{RESULTS}/resources/synthetic/scgpt" if synthetic else part["checkpoint"]
        return {name: f"{root}/{name}" for name in ("best_model.pt", "vocab.json", "args.json")}
    if synthetic:
        root = f"{RESULTS}/resources/synthetic/scfoundation"
        return {"checkpoint": f"{root}/models.ckpt", "gene_list": f"{root}/gene_list.tsv"}
    return {"checkpoint": part["checkpoint"], "gene_list": part["gene_list"]}


def go_graph_csv(wildcards):
    path = config["baselines"][wildcards.baseline][wildcards.side]["path"]
    known = {
        "synthetic": f"{RESULTS}/resources/synthetic/go_essential_all.csv",
        "gears": "resources/gears/go_essential_all/go_essential_all.csv",
    }
    return known.get(path, path)


def lsft_shards(dataset, baseline, pct):
    return expand(
        f"{RESULTS}/{dataset}/lsft/{baseline}/top{pct}/chunk{{chunk}}-of-{N_CHUNKS}.parquet",
        chunk=range(N_CHUNKS),
    )


def dataset_shards(dataset):
    return [s for b in wc.baselines_for(config, dataset) for p in TOP_PCTS for s in lsft_shards(dataset, b, p)]


def aggregate_inputs(wildcards):
    baselines = wc.baselines_for(config, wildcards.dataset)
    return {
        "global_metrics": [f"{RESULTS}/{wildcards.dataset}/global/{b}.parquet" for b in baselines],
        "lsft": dataset_shards(wildcards.dataset),
        "split": f"{RESULTS}/{wildcards.dataset}/split.json",
    }


def dataset_tables(dataset):
    return [f"{RESULTS}/tables/{dataset}/{name}.{ext}" for name in TABLE_NAMES for ext in ("csv", "md")]


def figures(dataset):
    return [
        f"{RESULTS}/figures/{dataset}/{name}.{ext}"
        for name in ("local_vs_global", "improvement_distribution")
        for ext in ("png", "svg")
    ]


def all_targets():
    """Tables and figures, plus every shard: a deleted shard is then rebuilt (and only it)."""
    targets = []
    for dataset in DATASETS:
        targets += dataset_tables(dataset) + figures(dataset) + dataset_shards(dataset)
    targets += [f"{RESULTS}/tables/combined.csv", f"{RESULTS}/tables/combined.md"]
    return targets
