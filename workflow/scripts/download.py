"""Rules download_*: fetch and verify GEARS datasets and GO resources."""

from lsftbench.data.download import download_rule_outputs
from lsftbench.pipeline.job import setup_logging

log = setup_logging(snakemake)  # noqa: F821
p = snakemake.params  # noqa: F821
options = dict(base_url=p.base_url, lock_file=p.lock_file, retries=p.retries, timeout=p.timeout, progress=True)
written = download_rule_outputs(snakemake.rule, snakemake.output, gears_name=p.get("gears_name"), **options)  # noqa: F821
log.info("verified and in place: %s", written)
