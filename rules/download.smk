# Downloads of the real GEARS data and GO resources (Harvard Dataverse), verified by checksum.
# Known checksums are checked; archives without a published one are pinned in download.lock_file
# on first download and verified on every reuse. Nothing unverified ever reaches a final path.

GEARS_DIR = "resources/gears"


rule download_gears_dataset:
    """Download a GEARS dataset archive and extract its perturb_processed.h5ad."""
    output:
        f"{GEARS_DIR}/{{dataset}}/perturb_processed.h5ad",
    log:
        f"{RESULTS}/logs/download/{{dataset}}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        gears_name=lambda w: dataset_config(w.dataset).get("gears_name", w.dataset),
        base_url=config["download"]["base_url"],
        lock_file=config["download"]["lock_file"],
        retries=config["download"]["retries"],
        timeout=config["download"]["timeout"],
    script:
        "../workflow/scripts/download.py"


rule download_go_resources:
    """Download gene2go_all.pkl, essential_all_data_pert_genes.pkl and the GO graph CSV."""
    output:
        gene2go=f"{GEARS_DIR}/gene2go_all.pkl",
        essential=f"{GEARS_DIR}/essential_all_data_pert_genes.pkl",
        go_csv=f"{GEARS_DIR}/go_essential_all/go_essential_all.csv",
    log:
        f"{RESULTS}/logs/download/go_resources.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=120,
    params:
        base_url=config["download"]["base_url"],
        lock_file=config["download"]["lock_file"],
        retries=config["download"]["retries"],
        timeout=config["download"]["timeout"],
    script:
        "../workflow/scripts/download.py"
