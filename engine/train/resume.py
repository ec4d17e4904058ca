"""The training state that lets a stopped run go on: ``CKPT.state`` beside the checkpoint.

The checkpoint keeps the best model (what predict and eval use); the state keeps the latest:
model, optimisers (with their per-group base rates), grad scaler, step, epoch and the steps done
in the epoch after it, the run's clock, best metrics and history, and every rank's RNG state.
It is written atomically by rank 0 at each validation, when a run is stopped and at its end,
and read with ``torch.load(weights_only=True)`` (no pickled code runs on load).
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from engine.annotations.errors import BadInput

__all__ = ["load_state", "restore_rng", "rng_state", "save_state", "state_path"]

FORMAT = 1


def state_path(checkpoint: str | os.PathLike) -> Path:
    return Path(f"{checkpoint}.state")


def rng_state() -> dict:
    """This process's RNG states (Python, NumPy, torch CPU and CUDA) as plain data and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
             "python": {"version": int(version), "internal": list(internal),
                        "gauss": None if gauss is None else float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(checkpoint: str | os.PathLike, trainer, info: dict) -> Path:
    """Write the run's state beside ``checkpoint`` (temp file, fsync, rename)."""
    path = state_path(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "family": trainer.family,
            "model": {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
            "optimizers": [opt.state_dict() for opt in trainer.optimizers],
            "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None, **info}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_state(checkpoint: str | os.PathLike, family: str, dist=None) -> dict:
    """The state to resume from, checked: BadInput naming the file and what is wrong."""
    path = state_path(checkpoint)
    if not path.is_file():
        raise BadInput(str(path), "--resume", f"no training state beside {Path(checkpoint).name}: a run writes "
                                              f"CKPT.state at each validation and when it is stopped")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise BadInput(str(path), "--resume", f"not a Visionbench training state ({type(exc).__name__}: {exc})") \
            from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadInput(str(path), "format", "not a Visionbench training state of this version")
    if data.get("family") != family:
        raise BadInput(str(path), "family", f"the state is of family {data.get('family')!r}, not {family!r}")
    world = dist.world if dist is not None else 1
    if len(data.get("rng") or []) not in (0, world) and world > 1:
        # a different number of processes: the data order is the same, the ranks' augmentations are new
        data["rng"] = [data["rng"][0]] * world
    return data
