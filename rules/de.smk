# Differential expression of every perturbation against ctrl, from the pseudobulk pass's per-condition
# means and variances (SPEC 7.2): the DE sets of the DE-gene metrics.


rule differential_expression:
    """Welch's t-test of each perturbation's cells against the ctrl cells, BH within each perturbation; GEARS's
    top-20 DE genes from the data file where it has them."""
    input:
        pseudobulk=f"{RESULTS}/{{dataset}}/pseudobulk.h5ad",
        data=perturb_data,
        settings=dataset_token,
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
    script:
        "../workflow/scripts/differential_expression.py"
