# The progress bar's bounds (SPEC 7, seed 003): null methods, the idealized baseline and the
# sampling-noise ceiling.


rule progress_methods:
    """Predictions of the null methods (train mean, no change, random perturbation embedding) and of the idealized
    baseline (USES TEST DATA, by design) for one split's test perturbations; the tables score them."""
    input:
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        split=f"{SPLIT_DIR}/split.json",
        settings=settings_token("progress"),
    output:
        f"{SPLIT_DIR}/progress_methods.npz",
    log:
        f"{RESULTS}/logs/progress_methods/{{dataset}}/{{protocol}}/seed{{seed}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        pca_dim=config["pca_dim"],
        ridge_penalty=config["ridge_penalty"],
        random_seed=lambda w: random_pert_seed(int(w.seed)),
        idealized_pert=config["progress_bar"]["idealized_pert"],
    script:
        "../workflow/scripts/progress_methods.py"


rule noise_ceiling:
    """Sampling-noise ceiling: random disjoint halves of each test perturbation's cells, streamed once; on the genes
    every compared method predicts (the gene-table baselines' embeddings and the models' predictions say which)."""
    input:
        data=perturb_data,
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        splits=lambda w: [f"{RESULTS}/{w.dataset}/{w.protocol}/seed{s}/split.json" for s in SEEDS],
        gene_sources=comparison_gene_sources,
        settings=lambda w: [dataset_token(w), settings_token("noise_ceiling")],
    output:
        f"{RESULTS}/{{dataset}}/{{protocol}}/noise_ceiling.parquet",
    log:
        f"{RESULTS}/logs/noise_ceiling/{{dataset}}/{{protocol}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=lambda w: config["progress_bar"]["max_mb"] + 1500,
        runtime=60,
    params:
        seeds=SEEDS,
        replicates=config["progress_bar"]["replicates"],
        seed=config["progress_bar"]["seed"],
        top_genes=config["metrics"]["top_genes"],
        exclude_target_gene=config["metrics"]["exclude_target_gene"],
    script:
        "../workflow/scripts/noise_ceiling.py"
