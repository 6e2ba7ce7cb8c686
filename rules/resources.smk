# Gene tables behind the pretrained and GO-graph baselines (SPEC 4), and their synthetic stand-ins.
# Stand-ins are generated here and go through the same extraction code as real checkpoints.

SYNTHETIC = f"{RESULTS}/resources/synthetic"


rule synthetic_scgpt_checkpoint:
    """A small scGPT-shaped checkpoint directory (real key names and shapes, synthetic weights)."""
    input:
        settings=settings_token("synthetic"),
    output:
        model=f"{SYNTHETIC}/scgpt/best_model.pt",
        vocab=f"{SYNTHETIC}/scgpt/vocab.json",
        args=f"{SYNTHETIC}/scgpt/args.json",
    log:
        f"{RESULTS}/logs/synthetic_checkpoint/scgpt.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        kind="scgpt",
        seed=config["synthetic"]["seed"],
    script:
        "../workflow/scripts/synthetic_resource.py"


rule synthetic_scfoundation_checkpoint:
    """A small scFoundation-shaped models.ckpt and its gene list."""
    input:
        settings=settings_token("synthetic"),
    output:
        model=f"{SYNTHETIC}/scfoundation/models.ckpt",
        gene_list=f"{SYNTHETIC}/scfoundation/gene_list.tsv",
    log:
        f"{RESULTS}/logs/synthetic_checkpoint/scfoundation.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        kind="scfoundation",
        seed=config["synthetic"]["seed"],
    script:
        "../workflow/scripts/synthetic_resource.py"


rule synthetic_go_graph:
    """A GO-like weighted gene graph in the layout of GEARS' go_essential_all.csv."""
    input:
        settings=settings_token("synthetic"),
    output:
        csv=f"{SYNTHETIC}/go_essential_all.csv",
    log:
        f"{RESULTS}/logs/synthetic_checkpoint/go_graph.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        kind="go_graph",
        seed=config["synthetic"]["seed"],
    script:
        "../workflow/scripts/synthetic_resource.py"


rule pretrained_gene_table:
    """Gene embedding table extracted from an scGPT or scFoundation checkpoint (torch, CPU)."""
    input:
        unpack(pretrained_inputs),
        settings=embedding_token,
    output:
        f"{RESULTS}/resources/gene_tables/{{baseline}}.{{side}}.pretrained.tsv",
    log:
        f"{RESULTS}/logs/pretrained_gene_table/{{baseline}}.{{side}}.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=30,
    params:
        spec=lambda w: config["baselines"][w.baseline][w.side],
    script:
        "../workflow/scripts/pretrained_gene_table.py"


rule go_graph_table:
    """Adjacency spectral embedding of the GO graph (d largest-magnitude eigenvalues)."""
    input:
        csv=go_graph_csv,
        settings=embedding_token,
    output:
        f"{RESULTS}/resources/gene_tables/{{baseline}}.{{side}}.go_graph.tsv",
    log:
        f"{RESULTS}/logs/go_graph_table/{{baseline}}.{{side}}.log",
    conda:
        "../envs/model.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        dim=config["pca_dim"],
    script:
        "../workflow/scripts/go_graph_table.py"


rule seed_compat_gene_table:
    """Gene tables as the published code's loaders build them (seed_compat): raw scGPT rows, GEARS' GO embedding."""
    input:
        unpack(seed_compat_table_inputs),
        settings=embedding_token,
    output:
        f"{RESULTS}/resources/gene_tables/{{baseline}}.{{side}}.seed_compat.tsv",
    log:
        f"{RESULTS}/logs/seed_compat_gene_table/{{baseline}}.{{side}}.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=30,
    params:
        kind=lambda w: config["baselines"][w.baseline][w.side]["type"],
    script:
        "../workflow/scripts/seed_compat_gene_table.py"
