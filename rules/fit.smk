# Global ridge fit per (dataset, baseline) (SPEC 5).


rule global_fit:
    """Fit Y = A K B on all training conditions; predict and score every test perturbation."""
    input:
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        split=f"{RESULTS}/{{dataset}}/split.json",
        embedding=f"{RESULTS}/{{dataset}}/embeddings/{{baseline}}.npz",
    output:
        metrics=f"{RESULTS}/{{dataset}}/global/{{baseline}}.parquet",
        predictions=f"{RESULTS}/{{dataset}}/global/{{baseline}}.h5ad",
    params:
        protocol=config["protocol"],
        ridge_penalty=config["ridge_penalty"],
        top_genes=config["metrics"]["top_genes"],
        min_predictable_tests=config["metrics"]["min_predictable_tests"],
    log:
        f"{RESULTS}/logs/global_fit/{{dataset}}/{{baseline}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/model.yaml"
    script:
        "../workflow/scripts/global_fit.py"
