# LSFT shards: one job per (dataset, baseline, K%, chunk of test perturbations) (SPEC 6).


rule lsft:
    """Refit on the top-K% most similar training perturbations, for each test perturbation of the chunk."""
    input:
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        split=f"{RESULTS}/{{dataset}}/split.json",
        embedding=f"{RESULTS}/{{dataset}}/embeddings/{{baseline}}.npz",
    output:
        f"{RESULTS}/{{dataset}}/lsft/{{baseline}}/top{{pct}}/chunk{{chunk}}-of-{{n_chunks}}.parquet",
    params:
        protocol=config["protocol"],
        ridge_penalty=config["ridge_penalty"],
        center=config["lsft"]["center"],
        refit_embeddings=config["lsft"]["refit_embeddings"],
        top_genes=config["metrics"]["top_genes"],
    log:
        f"{RESULTS}/logs/lsft/{{dataset}}/{{baseline}}/top{{pct}}/chunk{{chunk}}-of-{{n_chunks}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/model.yaml"
    script:
        "../workflow/scripts/lsft.py"
