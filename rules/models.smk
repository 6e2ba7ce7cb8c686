# Models of one's own (SPEC 7.3): the splits exported for their training code, their predictions evaluated
# beside the baselines on the default protocol's splits, and every method's predictions exported in the form
# cell-eval reads.


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
        unpack(model_inputs),
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        split=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/split.json",
        settings=lambda w: settings_token(f"models/{w.model}/{w.dataset}/seed{w.seed}"),
    output:
        metrics=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/models/{{model}}.parquet",
        predictions=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/models/{{model}}.npz",
    log:
        f"{RESULTS}/logs/evaluate_model/{{dataset}}/seed{{seed}}/{{model}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        options=lambda w: run_config.model_options(config, w.model, w.dataset, int(w.seed)),
        top_genes=config["metrics"]["top_genes"],
        exclude_target_gene=config["metrics"]["exclude_target_gene"],
    script:
        "../workflow/scripts/evaluate_model.py"


rule cell_totals:
    """Per-cell totals of expm1(X) of a dataset and their median: what a model's predicted counts are normalised to
    (scale: counts only; the default run never needs it)."""
    input:
        data=perturb_data,
        settings=dataset_token,
    output:
        f"{RESULTS}/{{dataset}}/cell_totals.json",
    log:
        f"{RESULTS}/logs/cell_totals/{{dataset}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../workflow/scripts/cell_totals.py"


rule export_method_predictions:
    """Every method's predicted mean expression on one (dataset, split seed) and the observed test pseudobulk, as
    AnnData files cell-eval reads (`snakemake export_predictions`)."""
    input:
        unpack(export_inputs),
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        split=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/split.json",
        nulls=f"{RESULTS}/{{dataset}}/default/seed{{seed}}/progress_methods.npz",
    output:
        directory(f"{RESULTS}/export/{{dataset}}/seed{{seed}}"),
    log:
        f"{RESULTS}/logs/export_method_predictions/{{dataset}}/seed{{seed}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        shards=export_shards,
    script:
        "../workflow/scripts/export_predictions.py"
