# Streaming pseudobulk (SPEC 3).


rule pseudobulk:
    """Mean expression per condition, streamed over row chunks of X."""
    input:
        perturb_data,
        settings=dataset_token,
    output:
        f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
    log:
        f"{RESULTS}/logs/pseudobulk/{{dataset}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        allow_raw_counts=lambda w: dataset_config(w.dataset).get("allow_raw_counts", False),
    script:
        "../workflow/scripts/pseudobulk.py"


rule seed_compat_pseudobulk:
    """Pseudobulk as the published LSFT code computes it (float32 means, first-cell order), for seed_compat."""
    input:
        perturb_data,
        settings=dataset_token,
    output:
        f"{RESULTS}/{{dataset}}/seed_compat/pseudobulk.h5ad",
    log:
        f"{RESULTS}/logs/seed_compat_pseudobulk/{{dataset}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../workflow/scripts/seed_compat_pseudobulk.py"
