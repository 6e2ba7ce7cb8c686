# Gene and perturbation embeddings of one baseline on one dataset (SPEC 4).


rule embedding:
    """Embeddings A (genes x d) and B (d x conditions) of one (dataset, protocol, split seed, baseline)."""
    input:
        unpack(embedding_inputs),
        settings=embedding_token,
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


rule training_pca:
    """PCA of the training pseudobulk of one (dataset, split seed): computed once, read by every baseline using it."""
    input:
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        split=f"{SPLIT_DIR}/split.json",
        settings=settings_token("pca"),
    output:
        f"{SPLIT_DIR}/training_pca.npz",
    log:
        f"{RESULTS}/logs/training_pca/{{dataset}}/{{protocol}}/seed{{seed}}.log",
    wildcard_constraints:
        protocol="default",  # seed_compat fits the published code's PCA inside each embedding job
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        pca_dim=config["pca_dim"],
    script:
        "../workflow/scripts/training_pca.py"
