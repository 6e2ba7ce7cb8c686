# LSFT benchmark of linear perturbation-response models. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/download.smk"
include: "rules/split.smk"
include: "rules/pseudobulk.smk"
include: "rules/de.smk"
include: "rules/resources.smk"
include: "rules/embeddings.smk"
include: "rules/fit.smk"
include: "rules/lsft.smk"
include: "rules/progress.smk"
include: "rules/models.smk"
include: "rules/aggregate.smk"


# A real run (never a dry run) records the settings it starts with (lsftbench.pipeline.settings): going back to
# them later, after dry runs with other settings, reruns nothing.
onstart:
    SETTINGS.mark_used()


# The tables, figures and run index of the configured protocol.
rule all:
    default_target: True
    input:
        all_targets(),


rule audit:
    """`snakemake audit`: the default and seed_compat protocols side by side, one audit table per dataset."""
    input:
        [f"{RESULTS}/tables/audit/{dataset}.{ext}" for dataset in DATASETS for ext in ("csv", "md")],
        all_targets("default"),
        all_targets("seed_compat"),


rule splits:
    """`snakemake splits`: every (dataset, split seed)'s exported split, for a model's own training code."""
    input:
        [
            f"{RESULTS}/splits/{dataset}/seed{seed}/{name}"
            for dataset in DATASETS
            for seed in SEEDS
            for name in SPLIT_EXPORT_FILES
        ],


rule export_predictions:
    """`snakemake export_predictions`: every method's predictions and the observed test pseudobulk of each dataset
    and split seed, as AnnData files cell-eval reads (README "Evaluate your own model")."""
    input:
        [f"{RESULTS}/export/{dataset}/seed{seed}" for dataset in DATASETS for seed in SEEDS],
