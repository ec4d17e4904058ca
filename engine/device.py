"""Pick the compute device, mixed-precision context and seeds in one place."""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

_KNOWN = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    """Resolve a device name: "auto" picks cuda, then mps, then cpu.

    "cuda" / "cuda:N" / "mps" when that hardware is absent raise ValueError naming what was
    asked and what is available, rather than failing later inside a model.
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":", 1)[0]
    if kind not in _KNOWN:
        raise ValueError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N, mps")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} was requested but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use --device cpu or auto"
            )
        if ":" in name:
            suffix = name.split(":", 1)[1]
            if not suffix.isdigit():
                raise ValueError(f"device {name!r}: the CUDA index must be a number, e.g. cuda:0")
            index = int(suffix)
            if index >= torch.cuda.device_count():
                raise ValueError(
                    f"device {name!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist"
                )
    if kind == "mps" and not _mps_available():
        raise ValueError(f"device {name!r} was requested but Apple MPS is not available; use cpu or auto")
    return torch.device(name)


def autocast_context(device: torch.device | str):
    """Mixed precision where it pays: bf16 (or fp16 on older GPUs) autocast on CUDA, else a no-op.

    CPU autocast is left off on purpose: on small CPU models it is slower and changes numerics.
    """
    device = torch.device(device) if not isinstance(device, torch.device) else device
    if device.type == "cuda" and torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
