"""Stage 1, data: reading and validating GEARS h5ad files, downloads, splits and the pseudobulk.

``h5ad`` (open and validate a ``perturb_processed.h5ad``), ``conditions`` (GEARS condition
names), ``download`` (verified GEARS downloads), ``split`` (GEARS simulation split, user splits),
``pseudobulk`` (streamed means per condition and what the fits read back), ``synthetic``
(every generated stand-in: datasets, checkpoints, the GO graph).
"""
