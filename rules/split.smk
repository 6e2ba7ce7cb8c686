# GEARS simulation split (SPEC 2) or the paper's doubles split (SPEC 10, split.method), a user split JSON, or the
# seed_compat 70/15/15 split; with each test condition's subgroup.


rule split:
    """Train/val/test condition lists of one (dataset, protocol, split seed)."""
    input:
        unpack(go_filter_inputs),
        data=perturb_data,
        split_file=split_file,
        settings=lambda w: [dataset_token(w), settings_token("split")],
    output:
        f"{SPLIT_DIR}/split.json",
    log:
        f"{RESULTS}/logs/split/{{dataset}}/{{protocol}}/seed{{seed}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        train_gene_set_size=config["split"]["train_gene_set_size"],
        method=config["split"]["method"],
        min_tests=config["metrics"]["min_predictable_tests"],
    script:
        "../workflow/scripts/split.py"
