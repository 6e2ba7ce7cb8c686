"""Rule run_index: the Markdown table of contents of one protocol's tables and figures."""

from lsftbench.io import write_text
from lsftbench.pipeline.job import setup_logging
from lsftbench.report.run_index import run_index_markdown

log = setup_logging(snakemake)  # noqa: F821
p, files = snakemake.params, list(snakemake.input.files)  # noqa: F821
text = run_index_markdown(snakemake.wildcards.protocol, p.results, p.datasets, p.seeds, p.top_pcts, files,  # noqa: F821
                          synthetic=p.synthetic, settings=p.settings, config=p.config)
write_text(text, snakemake.output[0])  # noqa: F821
log.info("indexed %d files", len(files))
