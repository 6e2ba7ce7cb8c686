"""Everything synthetic: the embedded datasets and the stand-ins for real resources.

``datasets`` (the seeded GEARS-format datasets of the default run), ``doubles`` (the double-perturbation
dataset ``norman`` with planted genetic interactions), ``count_model`` (the count model both share),
``expectation`` (that model's expected log-normalised means), ``large`` (real-size datasets
for the benchmarks, written in chunks), ``checkpoints`` (scGPT / scFoundation checkpoints with the
real file layouts), ``go_graph`` (a GO-like gene graph in GEARS' CSV layout) and ``stand_ins``
(what the rules ``synthetic_*`` write).
"""
