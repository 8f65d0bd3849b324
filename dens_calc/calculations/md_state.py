"""The one place that touches ASE integrators' private attributes: their state, for exact MD restarts.

ASE has no public API for thermostat and barostat state, so a bit-exact restart has to read and
write the attributes named in :data:`STATE`, and the Nosé–Hoover integrators cache positions and
momenta at construction (:data:`CACHED`), which a restart must replace.  If an ASE release renames
any of them, :func:`integrator_state` and :func:`restore_integrator_state` raise
``SimulationError`` (and ``tests/test_md_state.py`` fails) instead of restarting wrongly.
"""

from __future__ import annotations

import numpy as np

from .common import SimulationError

# attributes beyond positions/momenta/cell that a bit-exact restart needs, per integrator class
STATE = {
    "VelocityVerlet": (),
    "Langevin": (),  # its only state is the random-number generator, saved separately
    "NoseHooverChainNVT": ("_thermostat._eta", "_thermostat._p_eta"),
    "IsotropicMTKNPT": (
        "_eps", "_p_eps", "_cell0", "_volume0",
        "_thermostat._eta", "_thermostat._p_eta", "_barostat._xi", "_barostat._p_xi",
    ),
    "MTKNPT": ("_h", "_p_g", "_thermostat._eta", "_thermostat._p_eta", "_barostat._xi", "_barostat._p_xi"),
}
# positions and momenta the integrator copies at construction: refreshed from the restored atoms
CACHED = {"NoseHooverChainNVT": ("_q", "_p"), "IsotropicMTKNPT": ("_q", "_p"), "MTKNPT": ("_q", "_p")}


def _names(dyn) -> tuple[str, ...]:
    name = type(dyn).__name__
    if name not in STATE:
        raise SimulationError(f"no restart support for integrator {name}")
    return STATE[name]


def _owner(dyn, dotted: str):
    """The object holding the last part of ``dotted``, checking that every part exists."""
    *parents, last = dotted.split(".")
    obj = dyn
    for part in [*parents, last]:
        if not hasattr(obj, part):
            raise SimulationError(f"cannot save/restore {type(obj).__name__}.{part}: this ASE version lacks it")
        if part != last:
            obj = getattr(obj, part)
    return obj, last


def _encode(value) -> dict:
    if isinstance(value, np.ndarray):
        return {"array": value.tolist()}
    return {"scalar": float(value)}


def _decode(item: dict):
    return np.array(item["array"], dtype=float) if "array" in item else float(item["scalar"])


def integrator_state(dyn) -> dict:
    """The integrator's class and private state as a JSON-able dict (floats round-trip exactly)."""
    state = {}
    for dotted in _names(dyn):
        obj, last = _owner(dyn, dotted)
        state[dotted] = _encode(getattr(obj, last))
    return {"class": type(dyn).__name__, "state": state}


def restore_integrator_state(dyn, saved: dict) -> None:
    """Put a state from :func:`integrator_state` back, and point cached positions/momenta at the atoms."""
    if saved["class"] != type(dyn).__name__:
        raise SimulationError(f"cannot restart a {saved['class']} run with {type(dyn).__name__}")
    names = _names(dyn)
    for dotted, item in saved["state"].items():
        if dotted not in names:
            raise SimulationError(f"cannot restore {dotted}: not part of a {type(dyn).__name__} state")
        obj, last = _owner(dyn, dotted)
        setattr(obj, last, _decode(item))
    for attr, value in zip(CACHED.get(type(dyn).__name__, ()), (dyn.atoms.get_positions(), dyn.atoms.get_momenta())):
        _owner(dyn, attr)  # raises if ASE no longer caches it under this name
        setattr(dyn, attr, value)
