"""The shapes of the synthetic datasets (:mod:`lsftbench.data.synthetic.datasets`), importable without
the generator's dependencies: the Snakefile reads a preset's number of perturbations at start-up."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SyntheticPreset", "PRESETS"]


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


PRESETS: dict[str, SyntheticPreset] = {
    # Adamson: few perturbations (UPR screen), strong shared response.
    "adamson": SyntheticPreset(400, 84, 3, 3, 40, 600, 0.9, 1.5, 11, cell_type="K562"),
    # Replogle K562 essential: many perturbations, richer effect structure.
    "replogle_k562_essential": SyntheticPreset(800, 300, 6, 6, 30, 900, 0.7, 1.5, 12, cell_type="K562"),
    # Replogle RPE1 essential: overlapping genes, different mixing of the same latent programmes.
    "replogle_rpe1_essential": SyntheticPreset(800, 340, 6, 5, 30, 900, 0.7, 1.5, 13, cell_type="RPE1"),
}
