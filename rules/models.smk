# Models of one's own (SPEC 7.3): the splits exported for their training code, and their predictions
# evaluated beside the baselines on the default protocol's splits.


rule export_split:
    """The split of one (dataset, split seed) and what a model's own training code needs to use it."""
    input:
        split=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/split.json",
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        data=perturb_data,
        settings=dataset_token,
    output:
        [f"{RESULTS}/splits/{{dataset}}/seed{{seed}}/{name}" for name in SPLIT_EXPORT_FILES],
    log:
        f"{RESULTS}/logs/export_split/{{dataset}}/seed{{seed}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/export_split.py"


rule evaluate_model:
    """Read a model's predictions for one (dataset, split seed), check them and score every test perturbation."""
    input:
        predictions=model_predictions,
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        split=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/split.json",
        settings=lambda w: settings_token(f"models/{w.model}/{w.dataset}/seed{w.seed}"),
    output:
        metrics=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/models/{{model}}.parquet",
        predictions=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/models/{{model}}.npz",
    log:
        f"{RESULTS}/logs/evaluate_model/{{dataset}}/seed{{seed}}/{{model}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        path=model_path,
        quantity=lambda w: wc.model_file(config, w.model, w.dataset, int(w.seed))[1],
        top_genes=config["metrics"]["top_genes"],
        exclude_target_gene=config["metrics"]["exclude_target_gene"],
    script:
        "../workflow/scripts/evaluate_model.py"
