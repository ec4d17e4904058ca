"""Interchange formats: one module per format, each with the same two functions.

Contract of a format module (see docs/adr/0001-coordinates-and-formats.md):

- ``read(src: Path, *, skip_invalid=False) -> ImportBundle``: parses and validates, never touches
  a store. Invalid parts become ``Problem``s in ``bundle.problems``; with ``skip_invalid`` the
  invalid part is left out of the bundle (the Problem is kept so the report can list it).
- ``write(store, dst: Path, *, split=None) -> dict``: exports (atomic file writes), never
  modifies the store; returns a JSON-able summary (counts, paths).

Modules are imported lazily so that importing the registry costs nothing and a broken optional
format cannot break the others.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from ..bundle import ImportReport, import_bundle
from ..errors import BadInput, ImportFailed

# format name -> module (relative to this package)
FORMATS: dict[str, str] = {
    "coco": ".coco",
    "voc": ".voc",
    "yolo": ".yolo",
    "labelme": ".labelme",
    "masks": ".masks",
}


def format_module(fmt: str) -> ModuleType:
    """The module implementing `fmt`; BadInput (field "format") for an unknown name."""
    key = str(fmt).strip().lower()
    if key not in FORMATS:
        raise BadInput("<command line>", "format",
                       f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[key], __name__)


def read(fmt: str, src, *, skip_invalid: bool = False):
    """Parse `src` in format `fmt` into an ImportBundle (no store involved)."""
    return format_module(fmt).read(Path(src), skip_invalid=skip_invalid)


def import_into(store, fmt: str, src, skip_invalid: bool = False) -> ImportReport:
    """Read `src` and import it into `store` all-or-nothing (ImportFailed lists the problems)."""
    module = format_module(fmt)
    bundle = module.read(Path(src), skip_invalid=skip_invalid)
    if bundle.problems and not skip_invalid:
        raise ImportFailed(bundle.problems)
    # A format may need files in the project folder first (LabelMe's embedded imageData);
    # they are removed again if the import fails, so a failed import leaves no trace.
    prepare = getattr(module, "prepare", None)
    written = prepare(bundle, store) if prepare else []
    try:
        return import_bundle(store, bundle, skip_invalid=skip_invalid)
    except BaseException:
        for f in written:
            Path(f).unlink(missing_ok=True)
        raise


def export_from(store, fmt: str, dst, split: str | None = None) -> dict:
    """Export the project (or one split) to `dst` in format `fmt`; returns the module's summary."""
    return format_module(fmt).write(store, Path(dst), split=split)
