# Streaming pseudobulk (SPEC 3).


rule pseudobulk:
    """Mean expression per condition, streamed over row chunks of X."""
    input:
        perturb_data,
    output:
        f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
    log:
        f"{RESULTS}/logs/pseudobulk/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/pseudobulk.py"
