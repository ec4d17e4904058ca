"""Model families registered by name; the GUI and CLI list whatever is registered here.

A family module (``engine.models.unet`` etc.) calls :func:`register_family` at import time.
:func:`families` and :func:`get_family` import the known family modules lazily, so importing
the registry stays cheap and adding a family touches no GUI code.
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

KINDS = ("segmentation", "detection", "instance")

# Modules that register families when imported. A module that does not exist (yet) is skipped;
# a module that exists but fails for another reason is a bug and is reported loudly.
_FAMILY_MODULES = ("engine.models.unet", "engine.models.rcnn", "engine.models.yolo")

_REGISTRY: dict[str, "FamilySpec"] = {}
_lock = threading.RLock()
_loaded = False


@dataclass
class FamilySpec:
    """Everything the app needs to build, train and run one model family.

    - ``build(config: dict, num_classes: int) -> nn.Module``
    - ``train(token, store_path, out, config)``: a generator job function (see engine.jobs)
      that trains on the project at ``store_path`` and writes a checkpoint to ``out``.
    - ``predictor(checkpoint_path, device) -> object``: a ready-to-call predictor.
    - ``cpu_preset`` / ``gpu_preset``: default config for small CPU runs vs. a real GPU.
    """

    name: str
    kind: str
    build: Callable[[dict, int], Any]
    train: Callable[..., Iterator[Any]]
    predictor: Callable[[str, Any], Any]
    cpu_preset: dict = field(default_factory=dict)
    gpu_preset: dict = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("FamilySpec.name must be a non-empty string")
        if self.kind not in KINDS:
            raise ValueError(f"FamilySpec {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        for attr in ("build", "train", "predictor"):
            if not callable(getattr(self, attr)):
                raise ValueError(f"FamilySpec {self.name!r}: {attr} must be callable")

    def preset(self, device_type: str) -> dict:
        """The default config for a device type ("cuda" -> gpu_preset, anything else -> cpu_preset)."""
        return dict(self.gpu_preset if device_type == "cuda" else self.cpu_preset)


def register_family(spec: FamilySpec) -> FamilySpec:
    """Add (or replace, on module reload) a family. Returns ``spec`` so it can be used inline."""
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"register_family expects a FamilySpec, got {type(spec).__name__}")
    with _lock:
        _REGISTRY[spec.name] = spec
    return spec


def _is_missing(exc: ModuleNotFoundError, module: str) -> bool:
    """True when the error is that ``module`` itself (or a parent package) does not exist."""
    missing = exc.name or ""
    return bool(missing) and (module == missing or module.startswith(missing + "."))


def _load_family_modules() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        for module in _FAMILY_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if not _is_missing(exc, module):
                    raise
        _loaded = True


def families() -> list[FamilySpec]:
    """All registered families, sorted by name (imports the known family modules first)."""
    _load_family_modules()
    with _lock:
        return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_family(name: str) -> FamilySpec:
    """The family called ``name``; ValueError listing the known names when there is none."""
    _load_family_modules()
    with _lock:
        try:
            return _REGISTRY[name]
        except KeyError:
            known = ", ".join(sorted(_REGISTRY)) or "(none registered)"
            raise ValueError(f"unknown model family {name!r}; known families: {known}") from None
