"""Stage 2, embeddings: gene embeddings ``A`` and perturbation embeddings ``B`` of every baseline (SPEC 4).

``build`` (:class:`~lsftbench.embeddings.build.Embedding`, the training PCA, one baseline's
embeddings from its spec), ``pca`` (principal-component scores), ``gene_tables`` (user gene
tables), ``pretrained`` (scGPT / scFoundation gene tables from checkpoints), ``go_graph`` (the
spectral embedding of the GEARS GO graph).
"""
