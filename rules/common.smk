# Config loading and validation, input functions and target lists shared by all rules.
# The lsftbench package is installed with the workflow: `pip install -e .` for plain and Slurm runs (jobs run
# the same interpreter); with --sdm conda each env's post-deploy script installs it from LSFTBENCH_ROOT.
import copy
import os
import sys
from pathlib import Path

os.environ.setdefault("LSFTBENCH_ROOT", str(workflow.basedir))

from lsftbench.formats import SCGPT_FILES
from lsftbench.pipeline import config as run_config  # config look-ups: datasets, baselines, seeds, models
from lsftbench.pipeline import preflight
from lsftbench.pipeline import settings as run_settings

# A config of one's own: `--configfile my.yaml` runs exactly what my.yaml declares (plus schema
# defaults), instead of being merged into config/config.yaml's datasets and baselines.
USER_CONFIGFILES = [str(f) for f in workflow.overwrite_configfiles or []]
if USER_CONFIGFILES:
    config.clear()
    config.update(copy.deepcopy(workflow.config_settings.overwrite_config))

# Start-up checks (before the DAG): the schema with its defaults, one line per problem naming the
# key and where it is written; names usable as wildcards; every configured input path present.
preflight.validate_config(
    config,
    Path(workflow.basedir) / "config" / "schema.yaml",
    USER_CONFIGFILES or ["config/config.yaml"],
    command_line=dict(workflow.config_settings.config),
)
preflight.check_names(config)
run_config.check_config(config)
preflight.check_paths(config)

RESULTS = run_config.results_dir(config, USER_CONFIGFILES)
# What the outputs were made from, kept with them (lsftbench.pipeline.settings): one token per group of
# settings, rewritten only when its content (settings, hashes of configured inputs) changes, so that
# reruns follow settings and input content even without .snakemake/. Only the main process writes,
# and it holds the working directory's run lock (jobs on a cluster parse this file again).
SETTINGS = run_settings.SettingsTokens(RESULTS, config)
if workflow.is_main_process:
    run_settings.run_lock()
    for group in SETTINGS.sync():
        print(f"settings changed since the last run: {group} ({SETTINGS.path(group)})", file=sys.stderr)
PROTOCOL = config["protocol"]
DATASETS = run_config.benchmarked_datasets(config)
SEEDS = run_config.split_seeds(config)
# Datasets from the embedded generator: every table, figure and the run index say so.
SYNTHETIC_DATASETS = [d for d in DATASETS if config["datasets"][d]["source"] == "synthetic"]
TOP_PCTS = [run_config.pct_label(p) for p in config["top_pcts"]]
N_CHUNKS = config["lsft"]["test_chunks"]


def dataset_file(dataset):
    """The dataset's perturb_processed.h5ad: a local file, the synthetic generator's output or a download."""
    ds = config["datasets"][dataset]
    if ds["source"] == "local":
        return ds["path"]
    if ds["source"] == "gears":
        return f"resources/gears/{dataset}/perturb_processed.h5ad"
    return f"{RESULTS}/data/{dataset}/perturb_processed.h5ad"


def dataset_chunks(dataset):
    """LSFT jobs per (seed, baseline, K) of a dataset: lsft.test_chunks, capped at its number of perturbations
    when that is known before the run (synthetic presets, local files), so a small dataset never gets
    more jobs than it has perturbations."""
    ds = config["datasets"][dataset]
    n = None
    if ds["source"] == "synthetic":
        from lsftbench.data.synthetic.presets import preset_perturbations

        n = preset_perturbations(ds.get("preset", dataset), ds.get("overrides"))
    else:  # None while the file is not there yet (a download to come)
        from lsftbench.data.conditions import count_perturbations

        n = count_perturbations(dataset_file(dataset))
    return N_CHUNKS if n is None else max(1, min(N_CHUNKS, int(n)))


CHUNKS = {dataset: dataset_chunks(dataset) for dataset in config["datasets"]}
for _dataset, _n in CHUNKS.items():
    if _n < N_CHUNKS and workflow.is_main_process:
        print(
            f"WARNING: lsft.test_chunks = {N_CHUNKS} capped at {_n} for dataset {_dataset}, its number of "
            "perturbations: more LSFT jobs than perturbations would only be empty",
            file=sys.stderr,
        )
# Tables of one (dataset, protocol): pooled over split seeds, and per seed.
POOLED_TABLES = [
    "leaderboard",
    "lsft_performance",
    "lsft_performance_per_baseline",
    "fraction_improved",
    "de_metrics",
    "progress_bar",
    "model_comparisons",
    "summary",
]
SEED_TABLES = [
    "leaderboard",
    "lsft_performance",
    "lsft_performance_per_baseline",
    "fraction_improved",
    "de_metrics",
    "progress_bar",
]
FIGURES = ["leaderboard", "local_vs_global", "improvement_distribution", "progress_bar"]
# Datasets with double perturbations (SPEC 10) also get these tables: lsft_performance and de_metrics per test subgroup.
SUBGROUP_TABLES = [
    "lsft_performance_by_subgroup",
    "de_metrics_by_subgroup",
    "progress_bar_by_subgroup",
    "leaderboard_by_subgroup",
]
# ... and, on the default protocol, the genetic-interaction table (pooled and per seed) and a figure per seed.
INTERACTION_TABLE = "interactions"
# What `snakemake splits` exports per (dataset, split seed) for a model's own training code.
SPLIT_EXPORT_FILES = ["split.json", "split.pkl", "test_conditions.csv", "genes.csv", "control_mean.csv"]
# The metrics settings the tables depend on (a change of any other reruns no table).
TABLE_METRIC_KEYS = list(run_settings.TABLE_METRIC_KEYS)


wildcard_constraints:
    dataset="[A-Za-z0-9_\-]+",
    baseline="[A-Za-z0-9_\-]+",
    protocol="|".join(run_config.PROTOCOLS),
    seed="[0-9]+",
    pct="[0-9.]+",
    chunk="[0-9]+",
    side="gene|pert",
    n_chunks="[0-9]+",
    model="[A-Za-z0-9_\-]+",


def dataset_config(dataset):
    return config["datasets"][dataset]


def settings_token(group):
    """The settings token of ``group`` (lsftbench.pipeline.settings.settings_groups), an input of its rules."""
    return SETTINGS.path(group)


def dataset_token(wildcards):
    return settings_token(f"data/{wildcards.dataset}")


def embedding_token(wildcards):
    return settings_token(f"embedding/{wildcards.baseline}")


#: Outputs of one (dataset, protocol, split seed), as a wildcard pattern.
SPLIT_DIR = f"{RESULTS}/{{dataset}}/{{protocol}}/seed{{seed}}"


def split_dir(w):
    """:data:`SPLIT_DIR` for the wildcards of a job (input functions return concrete paths)."""
    return SPLIT_DIR.format(dataset=w.dataset, protocol=w.protocol, seed=w.seed)


def perturb_data(wildcards):
    """The dataset's perturb_processed.h5ad (:func:`dataset_file`) for a rule's input."""
    return dataset_file(wildcards.dataset)


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
    """The baseline's spec, its random embeddings drawn anew for each split seed."""
    return run_config.seeded_spec(config["baselines"][wildcards.baseline], int(wildcards.seed))


def random_pert_seed(split_seed):
    """Seed of the progress bar's random-perturbation-embedding null: that of the first baseline with a
    random perturbation embedding (so the null is that baseline's global fit), else 1, drawn per split seed."""
    specs = [s for s in config["baselines"].values() if s.get("pert", {}).get("type") == "random"]
    spec = specs[0] if specs else {"pert": {"type": "random", "seed": 1}}
    return run_config.seeded_spec(spec, split_seed)["pert"]["seed"]


def protocol_pseudobulk(wildcards):
    """The pseudobulk the fits of a protocol use: seed_compat averages in float32 as the published code does."""
    if wildcards.protocol == "seed_compat":
        return f"{RESULTS}/{wildcards.dataset}/seed_compat/pseudobulk.h5ad"
    return f"{RESULTS}/{wildcards.dataset}/pseudobulk.h5ad"


def embedding_inputs(wildcards):
    """Pseudobulk and split of the dataset, plus what the baseline's embeddings are built from."""
    spec = config["baselines"][wildcards.baseline]
    inputs = {
        "pseudobulk": protocol_pseudobulk(wildcards),
        "split": f"{split_dir(wildcards)}/split.json",
    }
    pert = spec.get("pert", {})
    if wildcards.protocol != "seed_compat" and run_config.uses_training_pca(spec):
        inputs["training_pca"] = f"{split_dir(wildcards)}/training_pca.npz"
    if pert.get("type") == "dataset_pca":
        inputs["source_pseudobulk"] = f"{RESULTS}/{pert['dataset']}/pseudobulk.h5ad"
    for side in ("gene", "pert"):
        part = spec.get(side, {})
        kind = part.get("type")
        if kind == "table":
            inputs[f"{side}_table"] = part["path"]
        elif wildcards.protocol == "seed_compat" and kind in ("scgpt", "go_graph"):
            # the published loaders: raw scGPT embedding rows; GEARS' own spectral embedding of the GO graph
            inputs[f"{side}_table"] = f"{RESULTS}/resources/gene_tables/{wildcards.baseline}.{side}.seed_compat.tsv"
        elif kind in ("scgpt", "scfoundation"):
            inputs[f"{side}_table"] = f"{RESULTS}/resources/gene_tables/{wildcards.baseline}.{side}.pretrained.tsv"
        elif kind == "go_graph":
            inputs[f"{side}_table"] = f"{RESULTS}/resources/gene_tables/{wildcards.baseline}.{side}.go_graph.tsv"
    return inputs


def model_predictions(wildcards):
    """A model's predictions for one (dataset, split seed), when the file exists.

    A missing file is left out of the inputs so that evaluate_model runs and stops with an error naming the
    model, file, dataset and seed (an input function that raises would only be a warning in Snakemake's DAG).
    """
    path = model_path(wildcards)
    return path if os.path.exists(path) else []


def model_path(wildcards):
    """The path of a model's predictions for one (dataset, split seed), from its config template."""
    return run_config.model_file(config, wildcards.model, wildcards.dataset, int(wildcards.seed))[0]


def model_inputs(wildcards):
    """A model's predictions file (when it exists) and, for scale: counts, the dataset's cell totals."""
    inputs = {"predictions": model_predictions(wildcards)}
    if run_config.model_options(config, wildcards.model, wildcards.dataset, int(wildcards.seed))["scale"] == "counts":
        inputs["cell_totals"] = f"{RESULTS}/{wildcards.dataset}/cell_totals.json"
    return inputs


def export_shards(wildcards):
    """Baseline → K → its LSFT shards' .npz on one (dataset, split seed), default protocol (export_predictions)."""
    return {
        b: {
            float(p): [
                s.removesuffix(".parquet") + ".npz"
                for s in lsft_shards(wildcards.dataset, "default", wildcards.seed, b, p)
            ]
            for p in TOP_PCTS
        }
        for b in run_config.baselines_for(config, wildcards.dataset, "default")
    }


def export_inputs(wildcards):
    """The global fits and LSFT shards whose predictions export_predictions writes out."""
    shards = export_shards(wildcards)
    root = f"{RESULTS}/{wildcards.dataset}/default/seed{wildcards.seed}"
    return {
        "global_fits": [f"{root}/global/{b}.npz" for b in shards],
        "lsft": [path for by_pct in shards.values() for paths in by_pct.values() for path in paths],
    }


def model_outputs(dataset, seed, ext):
    """The evaluation files of every model of one's own on (dataset, split seed) (default protocol only)."""
    return [
        f"{RESULTS}/{dataset}/default/seed{seed}/models/{model}.{ext}"
        for model in run_config.models_for(config, dataset, "default")
    ]


def comparison_gene_sources(wildcards):
    """What the genes every compared method predicts (SPEC 7) follow from: the first split seed's embeddings of the
    baselines that predict only a gene table's genes, and every model of one's own's scored predictions (a model
    may predict fewer genes). Adding a baseline of all measured genes reruns no bound; adding a model does."""
    ds, protocol = wildcards.dataset, wildcards.protocol
    embeddings = [
        f"{RESULTS}/{ds}/{protocol}/seed{SEEDS[0]}/embeddings/{b}.npz"
        for b in run_config.gene_subset_baselines(config, ds, protocol)
    ]
    models = [
        f"{RESULTS}/{ds}/{protocol}/seed{s}/models/{m}.npz"
        for s in SEEDS
        for m in run_config.models_for(config, ds, protocol)
    ]
    return embeddings + models


def lsft_shared_matrices(wildcards):
    """The products the global fit wrote for the K shards of this baseline (the default protocol's LSFT)."""
    if wildcards.protocol == "seed_compat":
        return []
    return f"{split_dir(wildcards)}/lsft/{wildcards.baseline}/shared"


def pretrained_inputs(wildcards):
    """Checkpoint files of an scGPT / scFoundation embedding ("synthetic": the generated stand-in)."""
    part = config["baselines"][wildcards.baseline][wildcards.side]
    synthetic = part["checkpoint"] == "synthetic"
    if part["type"] == "scgpt":
        root = f"{RESULTS}/resources/synthetic/scgpt" if synthetic else part["checkpoint"]
        return {name: f"{root}/{name}" for name in SCGPT_FILES}
    if synthetic:
        root = f"{RESULTS}/resources/synthetic/scfoundation"
        return {"checkpoint": f"{root}/models.ckpt", "gene_list": f"{root}/gene_list.tsv"}
    return {"checkpoint": part["checkpoint"], "gene_list": part["gene_list"]}


def seed_compat_table_inputs(wildcards):
    """What a seed_compat gene table is read from: the scGPT checkpoint directory or the GO graph CSV."""
    if config["baselines"][wildcards.baseline][wildcards.side]["type"] == "scgpt":
        return pretrained_inputs(wildcards)
    return {"csv": go_graph_csv(wildcards)}


def go_graph_csv(wildcards):
    path = config["baselines"][wildcards.baseline][wildcards.side]["path"]
    known = {
        "synthetic": f"{RESULTS}/resources/synthetic/go_essential_all.csv",
        "gears": "resources/gears/go_essential_all/go_essential_all.csv",
    }
    return known.get(path, path)


def lsft_shards(dataset, protocol, seed, baseline, pct):
    n = CHUNKS[dataset]
    return [
        f"{RESULTS}/{dataset}/{protocol}/seed{seed}/lsft/{baseline}/top{pct}/chunk{chunk}-of-{n}.parquet"
        for chunk in range(n)
    ]


def dataset_shards(dataset, protocol):
    return [
        shard
        for seed in SEEDS
        for b in run_config.baselines_for(config, dataset, protocol)
        for p in TOP_PCTS
        for shard in lsft_shards(dataset, protocol, seed, b, p)
    ]


def aggregate_inputs(wildcards):
    """Every seed's global fits, LSFT shards and split of one (dataset, protocol)."""
    ds, protocol = wildcards.dataset, wildcards.protocol
    baselines = run_config.baselines_for(config, ds, protocol)
    return {
        "global_metrics": [f"{RESULTS}/{ds}/{protocol}/seed{s}/global/{b}.parquet" for s in SEEDS for b in baselines],
        "global_predictions": [f"{RESULTS}/{ds}/{protocol}/seed{s}/global/{b}.npz" for s in SEEDS for b in baselines],
        "lsft": dataset_shards(ds, protocol),
        "splits": [f"{RESULTS}/{ds}/{protocol}/seed{s}/split.json" for s in SEEDS],
        "progress_methods": [f"{RESULTS}/{ds}/{protocol}/seed{s}/progress_methods.npz" for s in SEEDS],
        "noise_ceiling": f"{RESULTS}/{ds}/{protocol}/noise_ceiling.parquet",
        "de": f"{RESULTS}/{ds}/de.h5",
        "model_metrics": (
            [path for s in SEEDS for path in model_outputs(ds, s, "parquet")] if protocol == "default" else []
        ),
        "model_predictions": (
            [path for s in SEEDS for path in model_outputs(ds, s, "npz")] if protocol == "default" else []
        ),
    }


def table_dir(dataset, protocol):
    return f"{RESULTS}/tables/{protocol}/{dataset}"


def dataset_tables(dataset, protocol):
    """Pooled and per-seed tables (CSV + Markdown) of one (dataset, protocol)."""
    root = table_dir(dataset, protocol)
    pooled = [f"{root}/{name}.{ext}" for name in POOLED_TABLES for ext in ("csv", "md")]
    per_seed = [f"{root}/seed{s}/{name}.{ext}" for s in SEEDS for name in SEED_TABLES for ext in ("csv", "md")]
    doubles = []
    if run_config.has_double_perturbations(config, dataset):
        names = SUBGROUP_TABLES + ([INTERACTION_TABLE] if protocol == "default" else [])
        doubles = [f"{root}/{name}.{ext}" for name in names for ext in ("csv", "md")]
        doubles += [f"{root}/seed{s}/{name}.{ext}" for s in SEEDS for name in names for ext in ("csv", "md")]
    return pooled + per_seed + [f"{root}/per_perturbation.parquet", f"{root}/per_method.parquet"] + doubles


def figures(dataset, protocol):
    out = [f"{RESULTS}/figures/{protocol}/{dataset}/{name}.{ext}" for name in FIGURES for ext in ("png", "svg")]
    if protocol == "default" and run_config.has_double_perturbations(config, dataset):
        out += interaction_figures(dataset)
    return out


def interaction_figures(dataset):
    """The TPR-FDP curves of the genetic-interaction analysis, one figure per split seed (SPEC 10)."""
    return [
        f"{RESULTS}/figures/default/{dataset}/{INTERACTION_TABLE}_seed{s}.{ext}"
        for s in SEEDS
        for ext in ("png", "svg")
    ]


def interaction_inputs(wildcards):
    """The pseudobulk, the splits and every prediction file of one dataset's default run (rule interactions)."""
    ds = wildcards.dataset
    baselines = run_config.baselines_for(config, ds, "default")
    shards = [shard[: -len(".parquet")] + ".npz" for shard in dataset_shards(ds, "default")]
    return {
        "pseudobulk": f"{RESULTS}/{ds}/pseudobulk.h5ad",
        "splits": [f"{RESULTS}/{ds}/default/seed{s}/split.json" for s in SEEDS],
        "global_predictions": [f"{RESULTS}/{ds}/default/seed{s}/global/{b}.npz" for s in SEEDS for b in baselines],
        "lsft_predictions": shards,
        "model_predictions": [path for s in SEEDS for path in model_outputs(ds, s, "npz")],
    }


def interaction_keys(wildcards):
    """What each file of interaction_inputs is: (seed, baseline), (seed, baseline, K) per shard, (seed, model)."""
    ds = wildcards.dataset
    baselines = run_config.baselines_for(config, ds, "default")
    models = run_config.models_for(config, ds, "default")
    return {
        "global": [[s, b] for s in SEEDS for b in baselines],
        "lsft": [[s, b, float(p)] for s in SEEDS for b in baselines for p in TOP_PCTS for _ in range(CHUNKS[ds])],
        "models": [[s, m] for s in SEEDS for m in models],
    }


def run_index(protocol):
    """The run's table of contents: the one file `all` asks for (so its log line stays short)."""
    return f"{RESULTS}/tables/{protocol}/README.md"


def expected_outputs(protocol):
    """Every table, figure and shard of a complete run of ``protocol``."""
    outputs = []
    for dataset in DATASETS:
        outputs += dataset_tables(dataset, protocol) + figures(dataset, protocol) + dataset_shards(dataset, protocol)
    return outputs + run_outputs(protocol)


def run_outputs(protocol):
    """Outputs across datasets: the combined table and the forest plot."""
    return [
        f"{RESULTS}/tables/{protocol}/{name}.{ext}" for name in ("leaderboard", "combined") for ext in ("csv", "md")
    ] + [f"{RESULTS}/figures/{protocol}/forest.{ext}" for ext in ("png", "svg")]


def all_targets(protocol=PROTOCOL):
    """The run index, plus any expected output that is missing after an earlier run.

    Snakemake does not rebuild a deleted intermediate file whose consumers are up to date; asking
    for the missing ones (only) rebuilds exactly them and what depends on them.
    """
    index = run_index(protocol)
    if not os.path.exists(index):
        return [index]
    return [index] + [path for path in expected_outputs(protocol) if not os.path.exists(path)]
