"""``DeNSCalculator``: a DeNS-trained potential behind ASE's ``Calculator`` API."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from .. import __version__
from ..checkpoint import load_potential, resolve_checkpoint
from ..data.graph import atoms_to_graph, collate
from ..nn.committee import Committee
from ..nn.fused import fused_available
from ..nn.model import DeNSPotential, evaluate
from ..runtime import resolve_device, resolve_dtype  # noqa: F401  (resolve_device: also imported from here)


class NonFiniteOutputError(RuntimeError):
    """The model returned NaN or infinity (the structure is likely far outside its training data)."""


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class DeNSCalculator(Calculator):
    """Energy, forces, stress and per-atom energies from a DeNS potential.

    Parameters
    ----------
    model
        A checkpoint file, a model directory, a bundled model name (see ``dens-calc models``)
        or an already built :class:`~dens_calc.nn.DeNSPotential` or
        :class:`~dens_calc.nn.committee.Committee` (the mean energy of several models).
    device
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    dtype
        ``"float32"`` (default; fast) or ``"float64"`` (for finite-difference checks,
        phonons and tight NVE energy conservation).
    forces
        ``"auto"`` (default: as the model was trained, from its checkpoint metadata),
        ``"conservative"`` (−∂E/∂r; also gives stress) or ``"direct"`` (the direct-force head of a
        model trained with ``--forces direct``: cheaper, not energy-conserving, no stress).

    Units follow ASE: eV, eV/Å and eV/Å³ (Voigt order xx, yy, zz, yz, xz, xy; positive =
    tensile).  Stress is only available for cells periodic in all three directions.

    A committee (the mean of several models) also leaves ``results["committee_energies"]`` (each
    member's energy, eV) and ``results["energy_std"]`` (their standard deviation, eV) after a
    calculation: a spread well above what it is on the training data's kinds of structure says the
    structure is unlike them (on the Zuo Mo test set, the one facet absent from training had twice the
    spread of any other frame; ``models/mo-zuo2020-committee/README.md``).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model: str | Path | DeNSPotential | Committee, *, device: str = "auto", dtype: str = "float32",
                 forces: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        if isinstance(model, (DeNSPotential, Committee)):
            # a private copy: converting dtype/device in place would change the caller's model
            self.model = copy.deepcopy(model).to(device=self.device, dtype=self.dtype).eval()
            self.metadata = {}
            source, digest = "in-memory", None
        else:
            path = resolve_checkpoint(model)
            self.model, self.metadata = load_potential(path, device=self.device, dtype=self.dtype)
            source, digest = str(path), _file_sha256(path)
        for p in self.model.parameters():
            p.requires_grad_(False)
        if self.device.type == "cpu":
            # load (on a new machine: compile, ~25 s) the fused CPU kernel now rather than inside the
            # first MD step or relaxation, where it would distort the timing
            fused_available()
        if forces == "auto":
            forces = self.metadata.get("forces", "conservative")
        if forces not in ("conservative", "direct"):
            raise ValueError(f"forces must be 'auto', 'conservative' or 'direct', got {forces!r}")
        if forces == "direct" and isinstance(self.model, Committee):
            raise ValueError("a committee gives conservative forces only (forces='auto' or 'conservative')")
        self.force_mode = forces
        self.parameters.update(
            model=source, checkpoint_sha256=digest, device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."), forces=forces,
            dens_calc_version=__version__,
        )

    @property
    def species(self) -> list[int]:
        return self.model.species

    @property
    def cutoff(self) -> float:
        return self.model.config.r_max

    def _graph(self, atoms: Atoms):
        return atoms_to_graph(atoms, self.model.config.species, self.model.config.r_max, dtype=self.dtype)

    def _evaluate(self, batch, want_stress: bool) -> dict[str, torch.Tensor]:
        if self.force_mode == "direct":
            with torch.no_grad():
                out = evaluate(self.model, batch, compute_forces=False, vector_heads=True, noise=False)
            out["forces"] = out["direct_forces"]
            return out
        return evaluate(self.model, batch, compute_forces=True, compute_stress=want_stress)

    def _predict(self, atoms_list: Sequence[Atoms], want_stress: bool) -> list[dict[str, np.ndarray]]:
        batch = collate([self._graph(a) for a in atoms_list]).to(self.device)
        out = self._evaluate(batch, want_stress)
        results = []
        node_splits = batch.ptr.tolist()
        for k, atoms in enumerate(atoms_list):
            lo, hi = node_splits[k], node_splits[k + 1]
            energy = float(out["energy"][k].detach())
            res = {
                "energy": energy,
                "free_energy": energy,
                "energies": out["node_energy"][lo:hi].detach().cpu().double().numpy(),
                "forces": out["forces"][lo:hi].detach().cpu().double().numpy(),
            }
            if want_stress and atoms.pbc.all():
                res["stress"] = full_3x3_to_voigt_6_stress(out["stress"][k].detach().cpu().double().numpy())
            if "member_energy" in out and self.model.is_mean:
                members = out["member_energy"][:, k].detach().cpu().double().numpy()
                res["committee_energies"] = members
                res["energy_std"] = float(members.std())
            for key, value in res.items():
                if not np.all(np.isfinite(value)):
                    raise NonFiniteOutputError(f"model returned non-finite {key}; the structure may be far outside "
                                               "the training data")
            results.append(res)
        return results

    def _check_stress_possible(self, atoms_list: Sequence[Atoms]) -> None:
        """Raise PropertyNotImplementedError if stress was asked for where the model cannot give it."""
        if self.force_mode == "direct":
            raise PropertyNotImplementedError(
                "a direct-force model gives no stress; fine-tune it conservatively "
                "(dens-calc finetune --forces conservative) or use DeNSCalculator(..., forces='conservative')"
            )
        for atoms in atoms_list:
            if not atoms.pbc.all():
                raise PropertyNotImplementedError(
                    "stress needs a cell that is periodic in all three directions "
                    f"(this structure has pbc={atoms.pbc.tolist()})"
                )

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties
        if want_stress:
            self._check_stress_possible([self.atoms])
        # stress costs almost nothing extra, so compute it whenever the cell allows
        auto_stress = self.atoms.pbc.all() and self.force_mode == "conservative"
        self.results = self._predict([self.atoms], want_stress or auto_stress)[0]

    def batch_evaluate(self, atoms_list: Sequence[Atoms], *, batch_size: int = 32, stress: bool | None = None) -> list[dict]:
        """Energies, forces (and stress for 3-D periodic cells) of many structures in batched forwards.

        Returns one results dict per structure (same keys and units as ``calc.results``).
        ``stress=None`` gives stress for every 3-D periodic structure (none for the others).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        results = []
        for start in range(0, len(atoms_list), batch_size):
            chunk = list(atoms_list[start : start + batch_size])
            if stress is None:
                want = self.force_mode == "conservative" and any(a.pbc.all() for a in chunk)
            else:
                want = stress
            if stress:
                self._check_stress_possible(chunk)
            results.extend(self._predict(chunk, want))
        return results
