"""The shapes of the synthetic datasets (:mod:`lsftbench.data.synthetic.datasets`, :mod:`~.doubles`), importable
without the generators' dependencies: the Snakefile reads a preset's number of perturbations at start-up
(:func:`preset_perturbations`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TypeVar

__all__ = ["SyntheticPreset", "DoublesPreset", "PRESETS", "with_overrides", "preset_perturbations"]


@dataclass(frozen=True)
class SyntheticPreset:
    """Shape and effect structure of one synthetic dataset."""

    n_genes: int
    n_perts: int
    n_unmeasured: int
    rank: int
    cells_per_pert: int
    n_ctrl: int
    effect_scale: float
    knockdown: float
    mixing_seed: int
    dispersion: float = 8.0
    library_size: float = 6000.0
    cell_type: str = "K562"


@dataclass(frozen=True)
class DoublesPreset:
    """Shape, effect structure and planted genetic interactions of a synthetic double-perturbation dataset
    (:func:`lsftbench.data.synthetic.doubles.make_doubles_dataset`).

    ``n_targets`` measured genes are perturbed alone (``G+ctrl``) and ``n_doubles`` distinct pairs of them
    together (``A+B``); a single's shifts of the other genes' log-means are softly clipped to ``± max_shift``
    (so that two add up without reaching the floor of no counts), and a target's own log-mean rises by
    ``target_shift`` (CRISPR activation, as in Norman et al.). Of the doubles, the fractions ``synergy_frac``,
    ``suppression_frac`` and ``dominant_frac`` (rounded) are synergistic, suppressive and dominated by one gene,
    the rest additive. A synergistic or suppressive double changes ``interaction_share`` of the
    ``interaction_pool`` most expressed genes by about ``± interaction_size`` on the log-mean scale beyond the
    sum of the singles' shifts.
    """

    n_genes: int
    n_targets: int
    n_doubles: int
    rank: int
    cells_per_pert: int
    n_ctrl: int
    effect_scale: float
    target_shift: float
    mixing_seed: int
    max_shift: float = 2.0
    interaction_pool: int = 100
    interaction_share: float = 0.1
    interaction_size: float = 0.8
    synergy_frac: float = 0.2
    suppression_frac: float = 0.2
    dominant_frac: float = 0.2
    dispersion: float = 8.0
    library_size: float = 6000.0
    cell_type: str = "K562"

    @property
    def n_perts(self) -> int:
        """Perturbation conditions: the singles and the doubles."""
        return self.n_targets + self.n_doubles


PRESETS: dict[str, SyntheticPreset | DoublesPreset] = {
    # Adamson: few perturbations (UPR screen), strong shared response.
    "adamson": SyntheticPreset(400, 84, 3, 3, 40, 600, 0.9, 1.5, 11, cell_type="K562"),
    # Replogle K562 essential: many perturbations, richer effect structure.
    "replogle_k562_essential": SyntheticPreset(800, 300, 6, 6, 30, 900, 0.7, 1.5, 12, cell_type="K562"),
    # Replogle RPE1 essential: overlapping genes, different mixing of the same latent programmes.
    "replogle_rpe1_essential": SyntheticPreset(800, 340, 6, 5, 30, 900, 0.7, 1.5, 13, cell_type="RPE1"),
    # Norman (GEARS "norman"): CRISPRa singles and doubles in K562, with planted genetic interactions.
    "norman": DoublesPreset(400, 36, 84, 4, 40, 600, 0.8, 2.0, 14, cell_type="K562"),
}

P = TypeVar("P", SyntheticPreset, DoublesPreset)


def with_overrides(preset: P, overrides: Mapping[str, float] | None) -> P:
    """``preset`` with some fields replaced; whole numbers written as floats (``1e3`` in a YAML config) count as
    integers."""
    if not overrides:
        return preset
    return replace(preset, **{k: int(v) if float(v).is_integer() else v for k, v in overrides.items()})


def preset_perturbations(name: str, overrides: Mapping[str, float] | None = None) -> int | None:
    """The number of perturbations of preset ``name`` with ``overrides`` (those naming a field of the preset);
    ``None`` for an unknown preset."""
    preset = PRESETS.get(name)
    if preset is None:
        return None
    known = {f.name for f in fields(preset)}
    return with_overrides(preset, {k: v for k, v in (overrides or {}).items() if k in known}).n_perts
