"""Interchange formats: one module per format, each with the same two functions.

Contract of a format module (see docs/adr/0001-coordinates-and-formats.md):

- ``read(src: Path, *, skip_invalid=False, progress=None) -> ImportBundle``: parses and validates,
  never touches a store. Invalid parts become ``Problem``s in ``bundle.problems``; with
  ``skip_invalid`` the invalid part is left out of the bundle (the Problem is kept so the report
  can list it).
- ``write(store, dst: Path, *, split=None, progress=None, **options) -> dict``: exports (atomic file
  writes), never modifies the store; returns a JSON-able summary (counts, paths, and what it merged
  or could not hold). ``options`` are listed in ``EXPORT_OPTIONS``.

``progress``, when given, is called as ``progress(done, total, stage)`` once per image (or
annotation file) with stage ``"read"``, ``"store"`` or ``"write"`` (see ``common.ticking``); the
CLI turns it into a tqdm bar.

Modules are imported lazily so that importing the registry costs nothing and a broken optional
format cannot break the others.
"""
from __future__ import annotations

import gc
import importlib
import time
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from ..bundle import ImportReport, import_bundle, validate_bundle
from ..errors import BadInput, ImportFailed

# format name -> module (relative to this package)
FORMATS: dict[str, str] = {
    "coco": ".coco",
    "voc": ".voc",
    "yolo": ".yolo",
    "labelme": ".labelme",
    "masks": ".masks",
}
# Pictures and who they show rather than shapes (a folder per identity, ADR 0024): the same
# read/write contract, but not an annotation interchange format, so the round trips that every
# format of FORMATS keeps (shapes, attributes, splits) do not apply to it.
IDENTITY_FORMATS: dict[str, str] = {"identities": ".identities"}
# Formats of image pairs (A -> B) rather than annotations: the same read/write contract, but
# what they carry is a target image per image (``pairs.target_path``), so the annotation round
# trips over FORMATS do not apply to them.
PAIR_FORMATS: dict[str, str] = {"pairs": ".pairs"}


def format_module(fmt: str) -> ModuleType:
    """The module implementing `fmt`; BadInput (field "format") for an unknown name."""
    key = str(fmt).strip().lower()
    known = {**FORMATS, **IDENTITY_FORMATS, **PAIR_FORMATS}
    if key not in known:
        raise BadInput("<command line>", "format",
                       f"unknown format {fmt!r}; expected one of {', '.join(known)}")
    return importlib.import_module(known[key], __name__)


def read(fmt: str, src, *, skip_invalid: bool = False, progress=None):
    """Parse `src` in format `fmt` into an ImportBundle (no store involved)."""
    with _gc_paused():
        bundle = format_module(fmt).read(Path(src), skip_invalid=skip_invalid, progress=progress)
        validate_bundle(bundle, src, skip_invalid=skip_invalid)
        return bundle


def import_into(store, fmt: str, src, skip_invalid: bool = False, timings: dict | None = None,
                progress=None) -> ImportReport:
    """Read `src` and import it into `store` all-or-nothing (ImportFailed lists the problems).

    `timings`, when given, receives ``read_s``/``store_s`` (wall) and ``read_cpu_s``/``store_cpu_s``
    (this process's CPU seconds) for benchmarks. `progress(done, total, stage)` is called per
    image while reading (stage "read") and storing (stage "store").
    """
    module = format_module(fmt)
    t0, c0 = time.perf_counter(), time.process_time()
    with _gc_paused():
        bundle = module.read(Path(src), skip_invalid=skip_invalid, progress=progress)
        validate_bundle(bundle, src, skip_invalid=skip_invalid)
        if bundle.problems and not skip_invalid:
            raise ImportFailed(bundle.problems)
        t1, c1 = time.perf_counter(), time.process_time()
        # A format may need files in the project folder first (LabelMe's embedded imageData);
        # they are removed again if the import fails, so a failed import leaves no trace.
        prepare = getattr(module, "prepare", None)
        written = prepare(bundle, store) if prepare else []
        try:
            report = import_bundle(store, bundle, skip_invalid=skip_invalid, progress=progress, src=src)
        except BaseException:
            for f in sorted(map(Path, written), key=lambda p: len(p.parts), reverse=True):  # files before folders
                if f.is_dir():
                    try:
                        f.rmdir()
                    except OSError:
                        pass
                else:
                    f.unlink(missing_ok=True)
            raise
    if timings is not None:
        timings.update(read_s=t1 - t0, store_s=time.perf_counter() - t1,
                       read_cpu_s=c1 - c0, store_cpu_s=time.process_time() - c1)
    return report


# The choices an export offers beyond format, split and destination: format -> option -> allowed
# values, the default first. An export dialog offers these; the CLI has a flag for each.
EXPORT_OPTIONS: dict[str, dict[str, tuple]] = {
    "yolo": {"task": ("auto", "detect", "segment")},   # see yolo.choose_task for what auto picks
    "voc": {"keep_image_format": (False, True),        # False: every image becomes JPEGImages/<id>.jpg
            "convention": ("corner", "devkit")},       # devkit: 1-based pixels, as detectron2 reads them
}


def export_from(store, fmt: str, dst, split: str | None = None, progress=None, overwrite: bool = False,
                proposals: bool = False, **options) -> dict:
    """Export the project (or one split) to `dst` in format `fmt`; returns the module's summary.

    `options` are the format's choices in EXPORT_OPTIONS (``task="segment"`` for yolo,
    ``keep_image_format=True`` for voc); others are BadInput naming the option.
    The destination rules (never a folder holding the project or its images; a non-empty one
    only with `overwrite`; all or nothing) are those of :mod:`.destination`.
    `progress(done, total, "write")` is called per image written.

    An export holds ground truth: unreviewed model proposals (engine.data.truth) are left out and
    counted as ``proposals_left_out`` unless `proposals` is true (then they are written like any
    other shape, their ``proposal`` attribute kept where the format has attributes).
    """
    from .destination import staged_export

    module = format_module(fmt)
    allowed = EXPORT_OPTIONS.get(fmt.strip().lower(), {})
    for name, value in options.items():
        if name not in allowed:
            raise BadInput("<options>", name, f"{fmt} export has no option {name!r}"
                           + (f"; it has {', '.join(allowed)}" if allowed else ""))
        if value not in allowed[name]:
            raise BadInput("<options>", name, f"{value!r} is not one of {', '.join(map(str, allowed[name]))}")
    source = store if proposals else _GroundTruthView(store)
    with _gc_paused():
        summary = staged_export(store, Path(dst), lambda folder: module.write(source, folder, split=split,
                                                                              progress=progress, **options),
                                overwrite=overwrite)
    if isinstance(summary, dict):
        summary["proposals_left_out"] = 0 if proposals else source.left_out.get(split, 0)
    return summary


class _GroundTruthView:
    """The store as an export reads it, without unreviewed proposals (`left_out`: split -> count)."""

    def __init__(self, store):
        self._store = store
        self.left_out: dict[str | None, int] = {}

    def __getattr__(self, name):
        return getattr(self._store, name)

    def all_annotations(self, split: str | None = None):
        from engine.data.truth import is_ground_truth

        out, left_out = {}, 0
        for image_id, anns in self._store.all_annotations(split=split).items():
            kept = [a for a in anns if is_ground_truth(a)]
            left_out += len(anns) - len(kept)
            out[image_id] = kept
        self.left_out[split] = left_out
        return out


@contextmanager
def _gc_paused():
    """Bulk reads create hundreds of thousands of small objects and no reference cycles; the
    cyclic collector would rescan them again and again (a third of COCO import time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
