# LSFT shards: one job per (dataset, protocol, split seed, baseline, K%, chunk of test perturbations) (SPEC 6).


rule lsft:
    """Refit on the top-K% most similar training perturbations, for each test perturbation of the chunk."""
    input:
        pseudobulk=protocol_pseudobulk,
        split=f"{SPLIT_DIR}/split.json",
        embedding=f"{SPLIT_DIR}/embeddings/{{baseline}}.npz",
        shared=lsft_shared_matrices,
        settings=lambda w: settings_token(f"lsft/{w.protocol}/{w.baseline}"),
    output:
        metrics=f"{SPLIT_DIR}/lsft/{{baseline}}/top{{pct}}/chunk{{chunk}}-of-{{n_chunks}}.parquet",
        predictions=f"{SPLIT_DIR}/lsft/{{baseline}}/top{{pct}}/chunk{{chunk}}-of-{{n_chunks}}.npz",
    log:
        f"{RESULTS}/logs/lsft/{{dataset}}/{{protocol}}/seed{{seed}}/{{baseline}}/top{{pct}}/chunk{{chunk}}-of-{{n_chunks}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        ridge_penalty=lambda w: run_settings.ridge_penalty(config, w.baseline),
        center=config["lsft"]["center"],
        published_version=config["seed_compat"]["published_version"],
        refit_embeddings=config["lsft"]["refit_embeddings"],
        top_genes=config["metrics"]["top_genes"],
        exclude_target_gene=config["metrics"]["exclude_target_gene"],
    script:
        "../workflow/scripts/lsft.py"
