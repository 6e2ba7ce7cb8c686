# LSFT benchmark of linear perturbation-response models. See README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/download.smk"
include: "rules/split.smk"
include: "rules/pseudobulk.smk"
include: "rules/resources.smk"
include: "rules/embeddings.smk"
include: "rules/fit.smk"
include: "rules/lsft.smk"
include: "rules/aggregate.smk"


rule all:
    input:
        all_targets(),
    default_target: True
