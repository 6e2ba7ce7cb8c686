# Tables (CSV + Markdown, SPEC 8), figures and the combined table.


rule dataset_tables:
    """The LSFT note's three tables and the per-perturbation rows of one dataset."""
    input:
        unpack(aggregate_inputs),
    output:
        tables=[
            report(
                f"{RESULTS}/tables/{{dataset}}/{name}.{ext}",
                category="Tables",
                subcategory="{dataset}",
                labels={"dataset": "{dataset}", "table": name, "format": ext},
            )
            for name in TABLE_NAMES
            for ext in ("csv", "md")
        ],
        per_perturbation=f"{RESULTS}/tables/{{dataset}}/per_perturbation.parquet",
    params:
        protocol=config["protocol"],
        skipped=lambda w: wc.skipped_baselines(config, w.dataset),
        table_names=TABLE_NAMES,
    log:
        f"{RESULTS}/logs/dataset_tables/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/dataset_tables.py"


rule figures:
    """Local vs global Pearson r by baseline and K; distribution of per-perturbation improvement."""
    input:
        f"{RESULTS}/tables/{{dataset}}/per_perturbation.parquet",
    output:
        [
            report(
                f"{RESULTS}/figures/{{dataset}}/{name}.{ext}",
                category="Figures",
                subcategory="{dataset}",
                labels={"dataset": "{dataset}", "figure": name, "format": ext},
            )
            for name in ("local_vs_global", "improvement_distribution")
            for ext in ("png", "svg")
        ],
    params:
        protocol=config["protocol"],
    log:
        f"{RESULTS}/logs/figures/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/figures.py"


rule combined_table:
    """One table across datasets."""
    input:
        expand(f"{RESULTS}/tables/{{dataset}}/per_perturbation.parquet", dataset=DATASETS),
    output:
        csv=report(f"{RESULTS}/tables/combined.csv", category="Tables", labels={"table": "combined", "format": "csv"}),
        md=report(f"{RESULTS}/tables/combined.md", category="Tables", labels={"table": "combined", "format": "md"}),
    params:
        protocol=config["protocol"],
    log:
        f"{RESULTS}/logs/combined_table.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/combined_table.py"
