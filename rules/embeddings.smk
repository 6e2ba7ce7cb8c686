# Gene and perturbation embeddings of one baseline on one dataset (SPEC 4).


rule embedding:
    """Embeddings A (genes x d) and B (d x conditions) of one (dataset, baseline)."""
    input:
        unpack(embedding_inputs),
    output:
        f"{RESULTS}/{{dataset}}/embeddings/{{baseline}}.npz",
    params:
        protocol=config["protocol"],
        spec=baseline_spec,
        pca_dim=config["pca_dim"],
    log:
        f"{RESULTS}/logs/embedding/{{dataset}}/{{baseline}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/model.yaml"
    script:
        "../workflow/scripts/embedding.py"
