"""Stage 4, evaluation: numbers about predictions (SPEC 7, 7.1, 7.2).

``metrics`` (per-perturbation metrics, ranks, discrimination score, spread), ``de`` (DE genes
from the cells and the DE-gene metrics), ``scoring`` (what the fit, LSFT and model jobs write),
``coverage`` (why a perturbation is not predictable), ``statistics`` (CIs, tests, test sets),
``progress_bar`` (null and cheater methods, WAP, BAP), ``noise_ceiling`` (the sampling-noise
ceiling from disjoint halves of the cells).
"""
