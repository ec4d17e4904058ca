"""Model families registered by name; the GUI and the CLI list whatever is registered here.

A family names its model builder, trainer and predictor, each as a callable or as a
``"module:attribute"`` reference resolved on first use, so registering a family imports neither
``engine.train`` nor ``engine.infer`` (and model modules import neither: no cycles).

Where families come from:
- the built-in ones, in ``engine.families``;
- plugins: any installed distribution with an entry point in the group ``visionbench.families``
  whose object is a FamilySpec, a list of them, a callable returning either, or a module that
  calls :func:`register_family` when imported. A plugin that fails to load is reported by
  :func:`plugin_errors` and never breaks the others;
- :func:`register_family` at run time (tests, notebooks).
See docs/adr/0019-family-registry.md.
"""
from __future__ import annotations

import importlib
import threading
import types
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Iterator

KINDS = ("segmentation", "detection", "instance", "embedding", "image2image", "optimisation")
ENTRY_POINT_GROUP = "visionbench.families"
_BUILTIN = "engine.families"

_REGISTRY: dict[str, "FamilySpec"] = {}
_PLUGIN_ERRORS: dict[str, str] = {}
_lock = threading.RLock()
_loaded = False


def resolve(ref: Any) -> Any:
    """A ``"module:attr"`` reference -> the object (anything else is returned as it is)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Option:
    """A family setting the Train panel shows (its type comes from the preset's value)."""

    key: str
    help: str = ""
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None


class FamilySpec:
    """Everything the workbench and the CLI need to build, train and run one model family.

    - ``model``: ``build(config: dict, num_classes: int) -> nn.Module`` (or a reference to it);
    - ``trainer``: an ``engine.train.loop.Trainer`` subclass (or a reference), driven by
      ``engine.train.loop.fit``; or a job function ``train(token, store_path, out, config)``;
    - ``predictor``: ``load(checkpoint_path, device) -> predictor`` (or a reference);
    - ``cpu_preset`` / ``gpu_preset``: the default config on a CPU / a CUDA GPU;
    - ``options``: the settings the Train panel offers (types from the preset);
    - ``metric``: the validation metric that picks the best checkpoint, for messages;
    - ``previews``: the live views its training yields, ``{name: kind}`` in the order they are laid
      out (kinds of ``engine.jobs.events.PREVIEW_KINDS``), so the GUI can build their panes before
      the first preview arrives; empty when they depend on the run (the panes then come as the
      previews do).
    """

    def __init__(self, name: str, kind: str, model: Any, trainer: Any, predictor: Any,
                 cpu_preset: dict | None = None, gpu_preset: dict | None = None, description: str = "",
                 options: tuple[Option, ...] | list[Option] = (), metric: str = "",
                 previews: dict[str, str] | None = None) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("FamilySpec.name must be a non-empty string")
        if kind not in KINDS:
            raise ValueError(f"FamilySpec {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
        for what, ref in (("model", model), ("trainer", trainer), ("predictor", predictor)):
            if not (callable(ref) or (isinstance(ref, str) and ":" in ref)):
                raise ValueError(f"FamilySpec {name!r}: {what} must be callable or a 'module:attribute' reference")
        self.name, self.kind, self.description, self.metric = name, kind, description, metric
        self._model, self._trainer, self._predictor = model, trainer, predictor
        self.cpu_preset = dict(cpu_preset or {})
        self.gpu_preset = dict(gpu_preset if gpu_preset is not None else self.cpu_preset)
        self.options = tuple(options)
        from engine.jobs.events import PREVIEW_KINDS

        self.previews = dict(previews or {})
        for preview, preview_kind in self.previews.items():
            if preview_kind not in PREVIEW_KINDS:
                raise ValueError(f"FamilySpec {name!r}: preview {preview!r} has kind {preview_kind!r}, not one of "
                                 f"{', '.join(PREVIEW_KINDS)}")

    def __repr__(self) -> str:
        return f"FamilySpec({self.name!r}, {self.kind!r})"

    def preset(self, device_type: str) -> dict:
        """The default config for a device type ("cuda" -> gpu_preset, anything else -> cpu_preset)."""
        return dict(self.gpu_preset if device_type == "cuda" else self.cpu_preset)

    def build(self, config: dict, num_classes: int) -> Any:
        return resolve(self._model)(config, num_classes)

    def trainer_class(self) -> Any:
        return resolve(self._trainer)

    def train(self, token, store_path, out, config: dict | None = None) -> Iterator[Any]:
        """The training job (a generator; see engine.jobs). ``config`` is complete (preset included)."""
        trainer = self.trainer_class()
        if isinstance(trainer, type):
            # Resolved like every other reference: engine.models never imports engine.train.
            fit = resolve("engine.train.loop:fit")
            return (yield from fit(trainer, token, store_path, out, config))
        return (yield from trainer(token, store_path, out, config or {}))

    def predictor(self, checkpoint_path: str, device: Any = "auto") -> Any:
        return resolve(self._predictor)(checkpoint_path, device)

    def schema(self, device_type: str = "cpu") -> list[dict]:
        """The options as the Train panel draws them: key, type (int|float|bool|str|choice),
        default (from the preset), choices, minimum, maximum, help."""
        preset = self.preset(device_type)
        out = []
        for opt in self.options:
            default = preset.get(opt.key)
            if opt.choices:
                kind = "choice"
            elif isinstance(default, bool):
                kind = "bool"
            elif isinstance(default, int):
                kind = "int"
            elif isinstance(default, float):
                kind = "float"
            else:
                kind = "str"
            out.append({"key": opt.key, "type": kind, "default": default, "choices": list(opt.choices),
                        "minimum": opt.minimum, "maximum": opt.maximum, "help": opt.help})
        return out


def register_family(spec: FamilySpec) -> FamilySpec:
    """Add (or replace, on module reload) a family. Returns ``spec`` so it can be used inline."""
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"register_family expects a FamilySpec, got {type(spec).__name__}")
    with _lock:
        _REGISTRY[spec.name] = spec
    return spec


def unregister_family(name: str) -> None:
    with _lock:
        _REGISTRY.pop(name, None)


def _register_loaded(obj: Any) -> None:
    if isinstance(obj, types.ModuleType):
        return  # importing it registered its families
    if callable(obj) and not isinstance(obj, FamilySpec):
        obj = obj()
    for spec in obj if isinstance(obj, (list, tuple)) else [obj]:
        if spec is not None:
            register_family(spec)


def _load_plugins() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            _register_loaded(ep.load())
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not hide the others
            _PLUGIN_ERRORS[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"


def _load_families() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        importlib.import_module(_BUILTIN)
        _load_plugins()


def plugin_errors() -> dict[str, str]:
    """Entry points that failed to load: name -> reason."""
    _load_families()
    return dict(_PLUGIN_ERRORS)


def families(kind: str | None = None) -> list[FamilySpec]:
    """All registered families (of one kind), sorted by name."""
    _load_families()
    with _lock:
        return [_REGISTRY[n] for n in sorted(_REGISTRY) if kind is None or _REGISTRY[n].kind == kind]


def get_family(name: str) -> FamilySpec:
    """The family called ``name``; ValueError listing the known names when there is none."""
    _load_families()
    with _lock:
        try:
            return _REGISTRY[name]
        except KeyError:
            known = ", ".join(sorted(_REGISTRY)) or "(none registered)"
            raise ValueError(f"unknown model family {name!r}; known families: {known}") from None

