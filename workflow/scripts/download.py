"""Rules download_*: fetch and verify GEARS datasets and GO resources."""

import sys

sys.path.insert(0, snakemake.scriptdir + "/../../src")  # noqa: F821 - conda envs lack the package

from pathlib import Path

from lsftbench.download import fetch_gears_dataset, fetch_go_resources
from lsftbench.smk import setup_logging

log = setup_logging(snakemake)  # noqa: F821
p, out = snakemake.params, snakemake.output  # noqa: F821
options = dict(base_url=p.base_url, lock_file=p.lock_file, retries=p.retries, timeout=p.timeout, progress=True)
if snakemake.rule == "download_gears_dataset":  # noqa: F821
    dest_dir = Path(out[0]).parents[1]
    path = fetch_gears_dataset(p.gears_name, dest_dir, **options)
    if path != Path(out[0]):
        path.replace(out[0])
    log.info("%s verified and extracted to %s", p.gears_name, out[0])
else:
    paths = fetch_go_resources(Path(out.gene2go).parent, **options)
    log.info("GO resources verified: %s", {k: str(v) for k, v in paths.items()})
