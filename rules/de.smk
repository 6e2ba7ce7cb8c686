# Differential expression of every perturbation against ctrl, from the pseudobulk pass's per-condition
# means and variances (SPEC 7.2): the DE sets of the DE-gene metrics.


rule differential_expression:
    """The DE test (metrics.de_test: the Wilcoxon rank-sum test, streamed over the cells, or Welch's t-test from the
    pseudobulk) of each perturbation's cells against the ctrl cells, BH within each perturbation; GEARS's top-20 DE
    genes from the data file where it has them."""
    input:
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        data=perturb_data,
        settings=lambda w: [dataset_token(w), settings_token("de")],
    output:
        f"{RESULTS}/{{dataset}}/de.h5",
    log:
        f"{RESULTS}/logs/differential_expression/{{dataset}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        test=config["metrics"]["de_test"],
        allow_raw_counts=lambda w: dataset_config(w.dataset).get("allow_raw_counts", False),
    script:
        "../workflow/scripts/differential_expression.py"
