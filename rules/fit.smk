# Global ridge fit per (dataset, protocol, split seed, baseline) (SPEC 5).


rule global_fit:
    """Fit Y = A K B on all training conditions; predict and score every test perturbation."""
    input:
        pseudobulk=protocol_pseudobulk,
        split=f"{SPLIT_DIR}/split.json",
        embedding=f"{SPLIT_DIR}/embeddings/{{baseline}}.npz",
        settings=lambda w: settings_token(f"fit/{w.baseline}"),
    output:
        metrics=f"{SPLIT_DIR}/global/{{baseline}}.parquet",
        predictions=f"{SPLIT_DIR}/global/{{baseline}}.npz",
        # The subset-independent LSFT products, computed once here and memory-mapped by every K shard.
        # Kept (not temp): a new K or a rerun shard then reuses them instead of redoing this job.
        lsft_shared=directory(f"{SPLIT_DIR}/lsft/{{baseline}}/shared"),
    log:
        f"{RESULTS}/logs/global_fit/{{dataset}}/{{protocol}}/seed{{seed}}/{{baseline}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        ridge_penalty=lambda w: run_settings.ridge_penalty(config, w.baseline),
        top_genes=config["metrics"]["top_genes"],
        min_predictable_tests=config["metrics"]["min_predictable_tests"],
        exclude_target_gene=config["metrics"]["exclude_target_gene"],
    script:
        "../workflow/scripts/global_fit.py"
