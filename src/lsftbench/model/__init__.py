"""Stage 3, model: the fits (SPEC 5, 6, 9.1 and 7.3).

``ridge`` (``Y ≈ A K B``), ``problem`` (a dataset, split and embedding aligned for a fit),
``global_fit``, ``lsft`` (local refits and the kNN reference), ``seed_compat`` (the published,
leaking protocol), ``protocol`` (what differs between the protocols, one object each),
``external`` (predictions of a model of one's own, read and checked).
"""
