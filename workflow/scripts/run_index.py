"""Rule run_index: the Markdown table of contents of one protocol's tables and figures."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from lsftbench.io import write_text
from lsftbench.run_index import run_index_markdown
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
text = run_index_markdown(snakemake.wildcards.protocol, p.results, p.datasets, p.seeds, p.top_pcts, list(snakemake.input))  # noqa: F821
write_text(text, snakemake.output[0])  # noqa: F821
log.info("indexed %d files", len(snakemake.input))  # noqa: F821
