# Gene and perturbation embeddings of one baseline on one dataset (SPEC 4).


rule embedding:
    """Embeddings A (genes x d) and B (d x conditions) of one (dataset, protocol, split seed, baseline)."""
    input:
        unpack(embedding_inputs),
    output:
        f"{SPLIT_DIR}/embeddings/{{baseline}}.npz",
    log:
        f"{RESULTS}/logs/embedding/{{dataset}}/{{protocol}}/seed{{seed}}/{{baseline}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        spec=baseline_spec,
        pca_dim=config["pca_dim"],
        min_table_genes=config["metrics"]["min_table_genes"],
    script:
        "../workflow/scripts/embedding.py"
