"""What differs between the protocols, one object each (SPEC sections 2-6 and 9.1).

``default`` is the protocol of SPEC sections 2-6: no test perturbation's observed expression
influences its own prediction. ``seed_compat`` recomputes what the LSFT note's published code
computes (:mod:`lsftbench.model.seed_compat`) and **leaks test data**. Every job whose work depends on
the protocol asks :func:`get_protocol` for the object and calls its method; nothing else branches on
the protocol's name.

=========================  ==========================================  ===============================================
step                       ``default``                                 ``seed_compat``
=========================  ==========================================  ===============================================
split                      GEARS simulation split (or the paper's      70/15/15 shuffle
                           doubles split, ``split.method``)
embedding                  :func:`~lsftbench.embeddings.build.         the published PCA / random draws / tables,
                           embedding_from_files`                       test columns projected from their own Δ
problem                    ``mean_response`` predicts every test       the published code's conditions
global fit                 :func:`~lsftbench.model.global_fit.         :func:`~lsftbench.model.seed_compat.
                           global_predictions`                         seed_global_predictions`
LSFT products shared       yes (:func:`~lsftbench.model.lsft.          no (every refit is the published one)
with the K shards          save_shared`)
LSFT                       :func:`~lsftbench.model.lsft.lsft`          :func:`~lsftbench.model.seed_compat.seed_lsft`
neighbour candidates       training perturbations                      training conditions, ``ctrl`` included
=========================  ==========================================  ===============================================

A user's split file replaces either protocol's split. Heavy imports (anndata, pandas, scikit-learn)
happen inside the methods that need them, so the fit and LSFT jobs of the default protocol do not pay them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..specs import PROTOCOLS
from .global_fit import global_predictions
from .lsft import LsftResult, lsft, n_neighbours, save_shared
from .problem import Problem, load_problem

if TYPE_CHECKING:
    from ..embeddings.build import Embedding

__all__ = ["Protocol", "DefaultProtocol", "SeedCompatProtocol", "SplitResult", "LsftSettings", "get_protocol"]


@dataclass
class SplitResult:
    """A split, where it came from, and what the job should log about it; ``subgroups``: each test condition's
    subgroup (SPEC 10, :data:`lsftbench.data.split.SUBGROUPS`)."""

    split: dict[str, list[str]]
    source: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    subgroups: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The split file's content: ``train``, ``val``, ``test`` and ``subgroups`` (test condition → subgroup)."""
        return {**self.split, "subgroups": dict(self.subgroups)}


@dataclass(frozen=True)
class LsftSettings:
    """The config's LSFT settings (``ridge_penalty``, ``lsft.*``, ``seed_compat.published_version``)."""

    ridge: float
    center: str = "local"
    refit_embeddings: bool = True
    published_version: str = "969de7a"


class Protocol:
    """The steps of the pipeline that depend on the protocol (see the module docstring)."""

    name: ClassVar[str]
    #: How every table and figure names the protocol; the leaking one says so.
    label: ClassVar[str]
    leaks_test_data: ClassVar[bool] = False
    #: A note for the summary table and the split log, or ``None``.
    split_note: ClassVar[str | None] = None

    # -- split --------------------------------------------------------------------------------------

    def split(
        self,
        data: str | os.PathLike[str],
        *,
        seed: int,
        train_gene_set_size: float = 0.75,
        split_file: str | os.PathLike[str] | None = None,
        go_resources: tuple[str, str] | None = None,
        method: str = "gears_simulation",
    ) -> SplitResult:
        """The split of one (dataset, split seed): a user's split file, or this protocol's split of the
        data's conditions (after GEARS' GO filter when ``go_resources`` = (gene2go, essential) is given), with
        the subgroup of each test condition (SPEC 10). ``method`` is ``split.method``
        (:data:`lsftbench.data.split.SPLIT_METHODS`), which the default protocol follows."""
        from ..data.split import read_split_json, split_conditions, split_subgroups

        conditions, dropped = split_conditions(data, go_resources)
        notes = [] if go_resources is None else [
            f"GO filter: dropped {len(dropped)} conditions whose genes are not all in the GO graph: {dropped}"
        ]
        if split_file:
            result = SplitResult(read_split_json(split_file, conditions), f"user file {split_file}", notes)
            method = None
        else:
            result = self._split(conditions, seed, train_gene_set_size, method)
            result.notes[:0] = notes
            method = self.split_method(method)
        result.subgroups = split_subgroups(conditions, result.split, method=method, seed=seed,
                                           train_gene_set_size=train_gene_set_size)
        return result

    def split_method(self, method: str) -> str | None:
        """The split method this protocol uses for the config's ``split.method`` (``None``: its own)."""
        return None

    def _split(self, conditions: list[str], seed: int, train_gene_set_size: float, method: str) -> SplitResult:
        raise NotImplementedError

    # -- embeddings and fits ------------------------------------------------------------------------

    def embedding(
        self,
        spec: dict[str, Any],
        inputs: Mapping[str, str | os.PathLike[str]],
        *,
        dim: int,
        split_seed: int,
        dataset: str,
        baseline: str,
        min_table_genes: int,
    ) -> Embedding:
        """The embeddings of one baseline from the files of the rule ``embedding`` (``inputs`` by name)."""
        raise NotImplementedError

    def load_problem(self, pseudobulk: str, split: str, embedding: str, top_genes: int, *, predict_all: bool) -> Problem:
        """A dataset, split and embedding aligned for a fit; ``predict_all``: the global fit (``mean_response``
        then predicts every test perturbation where the protocol allows it)."""
        return load_problem(pseudobulk, split, embedding, top_genes)

    def global_predictions(self, problem: Problem, ridge: float) -> np.ndarray:
        """Predicted Δ of the predictable test perturbations (genes × tests)."""
        raise NotImplementedError

    def save_shared(self, problem: Problem, path: str | os.PathLike[str]) -> list[str]:
        """Write what the K shards of this baseline share (:func:`lsftbench.model.lsft.save_shared`)."""
        return save_shared(problem, path)

    def lsft(
        self, problem: Problem, top_pct: float, tests: list[str], settings: LsftSettings,
        shared: str | os.PathLike[str] | None = None,
    ) -> LsftResult:
        """LSFT and kNN predictions of ``tests`` (an empty list gives an empty result)."""
        raise NotImplementedError

    def neighbour_candidates(self, problem: Problem) -> list[str]:
        """The conditions LSFT picks neighbours from."""
        return problem.train_perts

    def lsft_columns(self, settings: LsftSettings) -> dict[str, Any]:
        """Constant columns of an LSFT shard's table that record the settings it ran with."""
        return {"center": settings.center}

    def empty_lsft(self, problem: Problem, top_pct: float) -> LsftResult:
        """The result of a shard past the chunk cap: no test perturbations."""
        empty = np.zeros((len(problem.genes), 0))
        n = n_neighbours(len(self.neighbour_candidates(problem)), top_pct)
        return LsftResult([], empty, empty, n, np.zeros(0), [])


class DefaultProtocol(Protocol):
    """SPEC sections 2-6: no test perturbation's expression is used for its own prediction."""

    name = "default"
    label = "default (SPEC sections 2-6): no test perturbation's expression is used for its own prediction"

    def split_method(self, method: str) -> str:  # noqa: D102
        from ..data.split import SPLIT_METHODS

        if method not in SPLIT_METHODS:
            raise ValueError(f"split.method must be one of {list(SPLIT_METHODS)}, not {method!r}")
        return method

    def _split(self, conditions: list[str], seed: int, train_gene_set_size: float, method: str) -> SplitResult:
        from ..data.split import gears_simulation_split, paper_doubles_split

        if self.split_method(method) == "paper_doubles":
            return SplitResult(paper_doubles_split(conditions, seed=seed),
                               f"the paper's double-perturbation split (seed {seed}; SPEC 10)")
        split = gears_simulation_split(conditions, seed=seed, train_gene_set_size=train_gene_set_size)
        return SplitResult(split, f"GEARS simulation split (seed {seed}, train_gene_set_size {train_gene_set_size})")

    def embedding(self, spec, inputs, *, dim, split_seed, dataset, baseline, min_table_genes):  # noqa: D102
        from ..embeddings.build import embedding_from_files

        return embedding_from_files(spec, inputs, dim, dataset=dataset, baseline=baseline,
                                    min_table_genes=min_table_genes)

    def load_problem(self, pseudobulk, split, embedding, top_genes, *, predict_all):  # noqa: D102
        # mean_response predicts every test perturbation from the mean of all training perturbations
        # (SPEC 5); its pert embedding only chooses LSFT neighbours.
        return load_problem(pseudobulk, split, embedding, top_genes, every_condition=predict_all)

    def global_predictions(self, problem, ridge):  # noqa: D102
        return global_predictions(problem, ridge)

    def lsft(self, problem, top_pct, tests, settings, shared=None):  # noqa: D102
        if not tests:
            return self.empty_lsft(problem, top_pct)
        return lsft(problem, top_pct, settings.ridge, center=settings.center,
                    refit_embeddings=settings.refit_embeddings, tests=tests, shared=shared)

    def lsft_columns(self, settings):  # noqa: D102
        return {"center": settings.center, "refit_embeddings": bool(settings.refit_embeddings)}


class SeedCompatProtocol(Protocol):
    """SPEC 9.1: the published protocol, which LEAKS TEST DATA (:mod:`lsftbench.model.seed_compat`)."""

    name = "seed_compat"
    leaks_test_data = True

    @property
    def label(self) -> str:  # type: ignore[override]
        from .seed_compat import LEAK_LABEL

        return LEAK_LABEL

    @property
    def split_note(self) -> str:  # type: ignore[override]
        from .seed_compat import SPLIT_NOTE

        return SPLIT_NOTE

    def _split(self, conditions: list[str], seed: int, train_gene_set_size: float, method: str) -> SplitResult:
        from ..data.split import seed_compat_split

        source = f"seed_compat 70/15/15 shuffle (seed {seed}); LEAKS TEST DATA downstream"
        notes = [] if method == "gears_simulation" else [f"split.method {method} is not used: seed_compat has its own split"]
        return SplitResult(seed_compat_split(conditions, seed=seed), source, notes, warnings=[self.split_note])

    def embedding(self, spec, inputs, *, dim, split_seed, dataset, baseline, min_table_genes):  # noqa: D102
        from .seed_compat import seed_embedding_from_files

        # The published code seeds its PCA and all random draws with the split seed.
        return seed_embedding_from_files(spec, inputs, dim, seed=split_seed, baseline=baseline,
                                         min_table_genes=min_table_genes)

    def global_predictions(self, problem, ridge):  # noqa: D102
        from .seed_compat import seed_global_predictions

        return seed_global_predictions(problem, ridge)

    def save_shared(self, problem, path):  # noqa: D102
        return save_shared(problem, path, share=False)  # every published refit runs in its shard

    def lsft(self, problem, top_pct, tests, settings, shared=None):  # noqa: D102
        if not tests:
            return self.empty_lsft(problem, top_pct)
        from .seed_compat import seed_lsft  # scikit-learn: only this protocol pays its import

        return seed_lsft(problem, top_pct, settings.ridge, version=settings.published_version, tests=tests)

    def neighbour_candidates(self, problem):  # noqa: D102
        return problem.train  # ctrl is a neighbour candidate in the published code

    def lsft_columns(self, settings):  # noqa: D102
        from .seed_compat import published_center

        return {"center": published_center(settings.published_version), "published_version": settings.published_version,
                "refit_embeddings": bool(settings.refit_embeddings)}


_PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (DefaultProtocol(), SeedCompatProtocol())}
assert tuple(_PROTOCOLS) == PROTOCOLS, "model.protocol and pipeline.config disagree on the protocols"


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol object of ``name`` (``default`` or ``seed_compat``)."""
    if isinstance(name, Protocol):
        return name
    if name not in _PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; expected one of {sorted(_PROTOCOLS)}")
    return _PROTOCOLS[name]
