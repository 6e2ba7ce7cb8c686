# Input data: the embedded synthetic generator (default) or a download (source: gears).


rule synthetic_data:
    """Generate a seeded synthetic GEARS-format dataset (no network needed)."""
    input:
        settings=dataset_token,
    output:
        f"{RESULTS}/data/{{dataset}}/perturb_processed.h5ad",
    log:
        f"{RESULTS}/logs/synthetic_data/{{dataset}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        preset=lambda w: dataset_config(w.dataset).get("preset", w.dataset),
        seed=lambda w: dataset_config(w.dataset).get("seed", config["synthetic"]["seed"]),
        overrides=lambda w: dataset_config(w.dataset).get("overrides", {}),
    script:
        "../workflow/scripts/synthetic_data.py"
