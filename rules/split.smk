# GEARS simulation split (SPEC 2), a user split JSON, or the seed_compat 70/15/15 split.


rule split:
    """Train/val/test condition lists of one dataset."""
    input:
        unpack(go_filter_inputs),
        data=perturb_data,
        split_file=split_file,
    output:
        f"{RESULTS}/{{dataset}}/split.json",
    params:
        protocol=config["protocol"],
        seed=config["split"]["seed"],
        train_gene_set_size=config["split"]["train_gene_set_size"],
    log:
        f"{RESULTS}/logs/split/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/split.py"
