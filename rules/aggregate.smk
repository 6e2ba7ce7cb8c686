# Tables (CSV + Markdown, SPEC 7.1 and 8), figures, the combined table, the run index and the leakage audit.


rule dataset_tables:
    """Pooled and per-seed tables of one (dataset, protocol), with confidence intervals and tests."""
    input:
        unpack(aggregate_inputs),
        settings=lambda w: settings_token(f"aggregation/{w.protocol}"),
    output:
        pooled=[
            report(
                f"{RESULTS}/tables/{{protocol}}/{{dataset}}/{name}.{ext}",
                category="Tables ({protocol})",
                subcategory="{dataset}",
                labels={"dataset": "{dataset}", "table": name, "seeds": "pooled", "format": ext},
                caption=f"../report/tables/{name}.rst",
            )
            for name in POOLED_TABLES
            for ext in ("csv", "md")
        ],
        per_seed=[
            f"{RESULTS}/tables/{{protocol}}/{{dataset}}/seed{seed}/{name}.{ext}"
            for seed in SEEDS
            for name in SEED_TABLES
            for ext in ("csv", "md")
        ],
        per_perturbation=f"{RESULTS}/tables/{{protocol}}/{{dataset}}/per_perturbation.parquet",
        per_method=f"{RESULTS}/tables/{{protocol}}/{{dataset}}/per_method.parquet",
    log:
        f"{RESULTS}/logs/dataset_tables/{{protocol}}/{{dataset}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        skipped=lambda w: run_config.skipped_baselines(config, w.dataset, w.protocol),
        seeds=SEEDS,
        statistics=config["statistics"],
        metrics={k: config["metrics"][k] for k in TABLE_METRIC_KEYS},
        primary_metric=config["leaderboard"]["primary_metric"],
        synthetic=lambda w: dataset_config(w.dataset)["source"] == "synthetic",
        settings=lambda w: run_settings.table_settings(config, w.protocol),
    script:
        "../workflow/scripts/dataset_tables.py"


rule subgroup_tables:
    """lsft_performance, de_metrics, the progress bar and the leaderboard overall and per test subgroup (SPEC 10) of
    a dataset with double perturbations."""
    input:
        per_perturbation=f"{RESULTS}/tables/{{protocol}}/{{dataset}}/per_perturbation.parquet",
        per_method=f"{RESULTS}/tables/{{protocol}}/{{dataset}}/per_method.parquet",
        noise_ceiling=f"{RESULTS}/{{dataset}}/{{protocol}}/noise_ceiling.parquet",
        de=f"{RESULTS}/{{dataset}}/de.h5",
        settings=lambda w: settings_token(f"aggregation/{w.protocol}"),
    output:
        pooled=[
            report(
                f"{RESULTS}/tables/{{protocol}}/{{dataset}}/{name}.{ext}",
                category="Tables ({protocol})",
                subcategory="{dataset}",
                labels={"dataset": "{dataset}", "table": name, "seeds": "pooled", "format": ext},
                caption=f"../report/tables/{name}.rst",
            )
            for name in SUBGROUP_TABLES
            for ext in ("csv", "md")
        ],
        per_seed=[
            f"{RESULTS}/tables/{{protocol}}/{{dataset}}/seed{seed}/{name}.{ext}"
            for seed in SEEDS
            for name in SUBGROUP_TABLES
            for ext in ("csv", "md")
        ],
    log:
        f"{RESULTS}/logs/subgroup_tables/{{protocol}}/{{dataset}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        skipped=lambda w: run_config.skipped_baselines(config, w.dataset, w.protocol),
        seeds=SEEDS,
        statistics=config["statistics"],
        metrics={k: config["metrics"][k] for k in TABLE_METRIC_KEYS},
        primary_metric=config["leaderboard"]["primary_metric"],
        synthetic=lambda w: dataset_config(w.dataset)["source"] == "synthetic",
        settings=lambda w: run_settings.table_settings(config, w.protocol),
    script:
        "../workflow/scripts/subgroup_tables.py"


rule interactions:
    """Genetic interactions (SPEC 10): every method's TPR at FDP 0.1 / 0.2 and AUC, per seed and pooled; the
    TPR-FDP curves per seed."""
    input:
        unpack(interaction_inputs),
        settings=settings_token("aggregation/default"),
    output:
        pooled=[
            report(
                f"{RESULTS}/tables/default/{{dataset}}/{INTERACTION_TABLE}.{ext}",
                category="Tables (default)",
                subcategory="{dataset}",
                labels={"dataset": "{dataset}", "table": INTERACTION_TABLE, "seeds": "pooled", "format": ext},
                caption=f"../report/tables/{INTERACTION_TABLE}.rst",
            )
            for ext in ("csv", "md")
        ],
        per_seed=[
            f"{RESULTS}/tables/default/{{dataset}}/seed{seed}/{INTERACTION_TABLE}.{ext}"
            for seed in SEEDS
            for ext in ("csv", "md")
        ],
        figures=[
            report(
                f"{RESULTS}/figures/default/{{dataset}}/{INTERACTION_TABLE}_seed{seed}.{ext}",
                category="Figures (default)",
                subcategory="{dataset}",
                labels={"dataset": "{dataset}", "figure": f"{INTERACTION_TABLE} seed {seed}", "format": ext},
                caption=f"../report/figures/{INTERACTION_TABLE}.rst",
            )
            for seed in SEEDS
            for ext in ("png", "svg")
        ],
    log:
        f"{RESULTS}/logs/interactions/{{dataset}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        files=interaction_keys,
        skipped=lambda w: run_config.skipped_baselines(config, w.dataset, "default"),
        seeds=SEEDS,
        statistics=config["statistics"],
        metrics={k: config["metrics"][k] for k in TABLE_METRIC_KEYS},
        primary_metric=config["leaderboard"]["primary_metric"],
        synthetic=lambda w: dataset_config(w.dataset)["source"] == "synthetic",
        settings=lambda w: run_settings.table_settings(config, "default"),
    script:
        "../workflow/scripts/interactions.py"


rule figures:
    """Local vs global Pearson r with CIs, the distribution of per-perturbation improvement, the progress bar."""
    input:
        per_perturbation=f"{RESULTS}/tables/{{protocol}}/{{dataset}}/per_perturbation.parquet",
        performance=f"{RESULTS}/tables/{{protocol}}/{{dataset}}/lsft_performance.csv",
        progress=f"{RESULTS}/tables/{{protocol}}/{{dataset}}/progress_bar.csv",
        leaderboard=f"{RESULTS}/tables/{{protocol}}/{{dataset}}/leaderboard.csv",
        seed_progress=lambda w: [f"{table_dir(w.dataset, w.protocol)}/seed{s}/progress_bar.csv" for s in SEEDS],
        settings=lambda w: settings_token(f"aggregation/{w.protocol}"),
    output:
        [
            report(
                f"{RESULTS}/figures/{{protocol}}/{{dataset}}/{name}.{ext}",
                category="Figures ({protocol})",
                subcategory="{dataset}",
                labels={"dataset": "{dataset}", "figure": name, "format": ext},
                caption=f"../report/figures/{name}.rst",
            )
            for name in FIGURES
            for ext in ("png", "svg")
        ],
    log:
        f"{RESULTS}/logs/figures/{{protocol}}/{{dataset}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        confidence=config["statistics"]["confidence"],
        primary_metric=config["leaderboard"]["primary_metric"],
        seeds=SEEDS,
        synthetic=lambda w: dataset_config(w.dataset)["source"] == "synthetic",
        settings=lambda w: run_settings.table_settings(config, w.protocol),
    script:
        "../workflow/scripts/figures.py"


rule forest_figure:
    """LSFT improvement with its 95 % CI per baseline x K, one panel per dataset, split seeds pooled."""
    input:
        performance=lambda w: [f"{table_dir(d, w.protocol)}/lsft_performance.csv" for d in DATASETS],
        settings=lambda w: settings_token(f"aggregation/{w.protocol}"),
    output:
        [
            report(
                f"{RESULTS}/figures/{{protocol}}/forest.{ext}",
                category="Figures ({protocol})",
                labels={"figure": "forest", "format": ext},
                caption="../report/figures/forest.rst",
            )
            for ext in ("png", "svg")
        ],
    log:
        f"{RESULTS}/logs/forest_figure/{{protocol}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        datasets=DATASETS,
        n_seeds=len(SEEDS),
        confidence=config["statistics"]["confidence"],
        synthetic=SYNTHETIC_DATASETS,
        settings=lambda w: run_settings.table_settings(config, w.protocol),
    script:
        "../workflow/scripts/forest_figure.py"


rule combined_table:
    """One table across datasets (pooled over seeds, common test set)."""
    input:
        performance=lambda w: [f"{table_dir(d, w.protocol)}/lsft_performance.csv" for d in DATASETS],
        settings=lambda w: settings_token(f"aggregation/{w.protocol}"),
    output:
        csv=report(
            f"{RESULTS}/tables/{{protocol}}/combined.csv",
            category="Tables ({protocol})",
            labels={"table": "combined", "format": "csv"},
            caption="../report/tables/combined.rst",
        ),
        md=report(
            f"{RESULTS}/tables/{{protocol}}/combined.md",
            category="Tables ({protocol})",
            labels={"table": "combined", "format": "md"},
            caption="../report/tables/combined.rst",
        ),
    log:
        f"{RESULTS}/logs/combined_table/{{protocol}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        datasets=DATASETS,
        synthetic=SYNTHETIC_DATASETS,
        settings=lambda w: run_settings.table_settings(config, w.protocol),
    script:
        "../workflow/scripts/combined_table.py"


rule leaderboard:
    """Every method of every dataset on one table: the datasets' leaderboards side by side."""
    input:
        leaderboards=lambda w: [f"{table_dir(d, w.protocol)}/leaderboard.csv" for d in DATASETS],
        settings=lambda w: settings_token(f"aggregation/{w.protocol}"),
    output:
        csv=report(
            f"{RESULTS}/tables/{{protocol}}/leaderboard.csv",
            category="Tables ({protocol})",
            labels={"table": "leaderboard (all datasets)", "format": "csv"},
            caption="../report/tables/leaderboard_all.rst",
        ),
        md=report(
            f"{RESULTS}/tables/{{protocol}}/leaderboard.md",
            category="Tables ({protocol})",
            labels={"table": "leaderboard (all datasets)", "format": "md"},
            caption="../report/tables/leaderboard_all.rst",
        ),
    log:
        f"{RESULTS}/logs/leaderboard/{{protocol}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        datasets=DATASETS,
        primary_metric=config["leaderboard"]["primary_metric"],
        synthetic=SYNTHETIC_DATASETS,
        settings=lambda w: run_settings.table_settings(config, w.protocol),
    script:
        "../workflow/scripts/leaderboard.py"


rule run_index:
    """The run's table of contents: every table and figure of one protocol, and the settings behind them."""
    input:
        files=lambda w: [path for d in DATASETS for path in dataset_tables(d, w.protocol) + figures(d, w.protocol)]
        + run_outputs(w.protocol),
        settings=lambda w: settings_token(f"run_index/{w.protocol}"),
    output:
        f"{RESULTS}/tables/{{protocol}}/README.md",
    log:
        f"{RESULTS}/logs/run_index/{{protocol}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        results=lambda w, output: str(Path(output[0]).parents[2]),  # {R}/tables/{protocol}/README.md
        datasets=DATASETS,
        seeds=SEEDS,
        top_pcts=TOP_PCTS,
        synthetic=SYNTHETIC_DATASETS,
        settings=lambda w: run_settings.table_settings(config, w.protocol),
        config=lambda w: run_settings.output_config(config, w.protocol),
    script:
        "../workflow/scripts/run_index.py"


rule audit_table:
    """How much of each number the published protocol's leak inflates: seed_compat vs default, per dataset."""
    input:
        default=f"{RESULTS}/tables/default/{{dataset}}/lsft_performance.csv",
        seed_compat=f"{RESULTS}/tables/seed_compat/{{dataset}}/lsft_performance.csv",
        settings=settings_token("aggregation/audit"),
    output:
        csv=report(
            f"{RESULTS}/tables/audit/{{dataset}}.csv",
            category="Leakage audit",
            labels={"dataset": "{dataset}", "format": "csv"},
            caption="../report/tables/audit.rst",
        ),
        md=report(
            f"{RESULTS}/tables/audit/{{dataset}}.md",
            category="Leakage audit",
            labels={"dataset": "{dataset}", "format": "md"},
            caption="../report/tables/audit.rst",
        ),
    log:
        f"{RESULTS}/logs/audit_table/{{dataset}}.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        synthetic=lambda w: dataset_config(w.dataset)["source"] == "synthetic",
        settings=run_settings.table_settings(config, run_settings.AUDIT_PROTOCOL),
    script:
        "../workflow/scripts/audit_table.py"
