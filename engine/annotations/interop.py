"""Import and export as background jobs, for the workbench's File menu (no Qt, no torch).

The format readers and writers report progress through a callback (``progress(done, total,
stage)``); a job reports by yielding. ``with_progress`` bridges the two: it runs the reader on a
helper thread and yields its reports, and a cancelled token stops the reader at its next report.

An import is split in two because the project store belongs to the GUI thread (it holds the
project's write lock): ``read_job`` parses and validates on a worker (the slow part, one image
header per file), then ``store_bundle`` writes the valid part in one transaction. An export only
reads the project, so ``export_job`` opens its own read-only connection and runs whole on a worker.

``find_annotations`` looks beside a folder's images for annotation files other tools wrote
(LabelMe / X-AnyLabeling JSON, COCO JSON, Pascal VOC XML, YOLO labels) so that adding the images
never drops them silently.
"""
from __future__ import annotations

import inspect
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.jobs.cancel import JobCancelled
from engine.jobs.events import Progress

from .bundle import ImportBundle, ImportReport, import_bundle
from .errors import BadInput
from .imageio import is_image_file

# what each stage is called in a progress line
STAGE_WORDS = {"read": "reading", "store": "storing", "write": "writing"}
HEAD_BYTES = 65536  # how much of a file is read to tell its format


def with_progress(token, fn: Callable, **kwargs):
    """Job body: run ``fn(progress=..., **kwargs)`` on a helper thread, yield its reports as
    Progress events and return its result (its exception is raised here)."""
    reports: queue.SimpleQueue = queue.SimpleQueue()
    outcome: dict = {}

    def progress(done, total, stage):
        if token.cancelled:
            raise JobCancelled()
        reports.put(Progress(int(done), None if total is None else int(total), STAGE_WORDS.get(stage, stage)))

    def run():
        try:
            outcome["result"] = fn(progress=progress, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the job's thread below
            outcome["error"] = exc
        finally:
            reports.put(None)

    helper = threading.Thread(target=run, name="visionbench-format", daemon=True)
    helper.start()
    while True:
        try:
            event = reports.get(timeout=0.1)
        except queue.Empty:
            if token.cancelled:
                helper.join()  # the reader stops at its next report; nothing half-written stays
                raise JobCancelled() from None
            continue
        if event is None:
            break
        yield event
    helper.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def read_job(token, fmt: str, src: str):
    """Job: parse ``src`` in format ``fmt`` and return its ImportBundle. Invalid parts are left
    out and listed in ``bundle.problems`` (file, field, line), so the caller can show them and
    offer to import the rest; a source that is unusable as a whole raises BadInput."""
    from . import formats

    src_path = Path(src)
    if not src_path.exists():
        raise BadInput(str(src_path), "source", "file or folder not found")
    bundle = yield from with_progress(token, formats.read, fmt=fmt, src=src_path, skip_invalid=True)
    return bundle


def store_bundle(store, fmt: str, bundle: ImportBundle) -> ImportReport:
    """Write what ``read_job`` returned into ``store`` in one transaction (its problems are
    listed in the report's ``skipped``). A format that must first put files into the project
    folder (LabelMe's embedded images) removes them again when the import fails."""
    from . import formats

    module = formats.format_module(fmt)
    prepare = getattr(module, "prepare", None)
    written = prepare(bundle, store) if prepare else []
    try:
        return import_bundle(store, bundle, skip_invalid=True)
    except BaseException:
        for f in written:
            Path(f).unlink(missing_ok=True)
        raise


def export_job(token, project: str, fmt: str, dst: str, split: str | None = None, overwrite: bool = False,
               **options):
    """Job: export the project at ``project`` (opened read-only here) to ``dst``; returns the
    format's summary. ``overwrite`` is passed on to an exporter that checks its destination."""
    from . import formats
    from .store import ProjectStore

    extra = {}
    if "overwrite" in inspect.signature(formats.export_from).parameters:
        extra["overwrite"] = overwrite
    store = ProjectStore(project, readonly=True)
    try:
        summary = yield from with_progress(token, formats.export_from, store=store, fmt=fmt, dst=Path(dst),
                                           split=split, **extra, **options)
    finally:
        store.close()
    return summary if summary is not None else {"dst": str(dst)}


def is_nonempty_folder(path) -> bool:
    """True when ``path`` is a folder holding anything (an export there may replace files)."""
    p = Path(path)
    return p.is_dir() and any(p.iterdir())


def export_losses(summary: dict) -> list[str]:
    """What the export could not hold or had to change, as sentences for the user ([] = nothing)."""
    out = []
    for key in ("skipped", "not_exported"):
        value = summary.get(key)
        if isinstance(value, dict):
            parts = [f"{n} {kind}" for kind, n in sorted(value.items()) if n]
            if parts:
                out.append(f"not written (the format has no place for them): {', '.join(parts)}")
        elif isinstance(value, list) and value:
            out.append(f"not written: {len(value)} item(s), e.g. {value[0]}")
    if summary.get("proposals_left_out"):
        out.append(f"{summary['proposals_left_out']} unreviewed model proposal(s) left out (accept them in review "
                   "mode first, or export with proposals included)")
    if summary.get("merged_objects"):
        out.append(str(summary.get("merged") or f"{summary['merged_objects']} objects merged"))
    if summary.get("boxes_of_segmented_objects"):
        out.append(f"{summary['boxes_of_segmented_objects']} box(es) of objects that also have a mask are "
                   "represented by the mask alone")
    if summary.get("task_reason"):
        out.append(f"task {summary.get('task')}: {summary['task_reason']}")
    if summary.get("note"):
        out.append(str(summary["note"]))
    if summary.get("val_is_train"):
        out.append("the project has no val images: data.yaml validates on the training images")
    if summary.get("changed"):
        out.append(f"images converted: {summary['changed']}")
    return out


# ---- annotation files beside images --------------------------------------------------------
@dataclass(frozen=True)
class FoundAnnotations:
    """Annotation files of one format found in a folder: import them with ``fmt`` from ``src``."""

    fmt: str
    src: str
    files: int
    paths: tuple = field(default=(), compare=False, repr=False)  # the annotation files themselves

    def describe(self) -> str:
        names = {"labelme": "LabelMe / X-AnyLabeling JSON", "coco": "COCO JSON", "voc": "Pascal VOC XML",
                 "yolo": "YOLO labels"}
        return f"{names.get(self.fmt, self.fmt)}: {self.files} file(s) in {self.src}"


def _head(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(HEAD_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def sniff_json(path) -> str | None:
    """"labelme" or "coco" for a JSON annotation file of that kind, else None."""
    head = _head(Path(path))
    if '"shapes"' in head:
        return "labelme"
    if '"annotations"' in head or ('"images"' in head and '"categories"' in head):
        return "coco"
    return None


def _looks_like_yolo(path: Path) -> bool:
    for line in _head(path).splitlines():
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 5 and (len(tokens) < 7 or (len(tokens) - 1) % 2):
            return False
        try:
            [float(t) for t in tokens]
        except ValueError:
            return False
        return True
    return False


def _yolo_root(txt: Path, root: Path) -> Path:
    """The folder a YOLO import of ``txt`` starts from: above the last ``labels`` folder, else its own."""
    parts = txt.relative_to(root).parts[:-1]
    idx = max((i for i, p in enumerate(parts) if p == "labels"), default=None)
    return root.joinpath(*parts[:idx]) if idx is not None else txt.parent


def find_annotations(folder, files: list | None = None) -> list[FoundAnnotations]:
    """Annotation files under ``folder`` (``files``: its files when already listed), grouped into
    imports: LabelMe JSON (one import of the folder), each COCO JSON, VOC XML and YOLO label
    folders. Ordered LabelMe, COCO, VOC, YOLO: several may describe the same images."""
    root = Path(folder)
    if files is None:
        files = [p for p in root.rglob("*") if p.is_file()]
    files = [Path(p) for p in files if not any(part.startswith(".") for part in Path(p).relative_to(root).parts)]
    labelme, coco, voc, yolo = [], [], {}, {}
    has_images = {p.parent for p in files if is_image_file(p)}
    for p in files:
        suffix = p.suffix.lower()
        if suffix == ".json":
            kind = sniff_json(p)
            if kind == "labelme":
                labelme.append(p)
            elif kind == "coco":
                coco.append(p)
        elif suffix == ".xml" and "<annotation" in _head(p):
            src = p.parent.parent if p.parent.name == "Annotations" else p.parent
            voc.setdefault(src, []).append(p)
        elif suffix == ".txt" and p.name not in ("classes.txt", "class_names.txt") and _looks_like_yolo(p):
            src = _yolo_root(p, root)
            if src == p.parent and src not in has_images:
                continue  # numbers beside no image: not labels of these images
            yolo.setdefault(src, []).append(p)
    found = []
    if labelme:
        found.append(FoundAnnotations("labelme", str(root), len(labelme), tuple(labelme)))
    found += [FoundAnnotations("coco", str(p), 1, (p,)) for p in coco]
    found += [FoundAnnotations("voc", str(src), len(v), tuple(v)) for src, v in sorted(voc.items())]
    for src, v in sorted(yolo.items()):
        names = [p for p in files
                 if p.name in ("classes.txt", "data.yaml", "data.yml") and p.parent in (src, src / "labels")]
        found.append(FoundAnnotations("yolo", str(src), len(v), tuple(v + names)))
    return found


def import_source_of(path) -> tuple[str | None, Path, int]:
    """(format, source to import, how many other annotation files that source holds) for an
    annotation file opened on its own: a LabelMe JSON imports with its folder, a VOC XML with its
    VOC folder, a COCO JSON alone. Format None: not an annotation file Visionbench reads."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        fmt = sniff_json(path)
        if fmt == "labelme":
            return fmt, path.parent, sum(1 for p in path.parent.rglob("*.json") if p != path)
        return fmt, path, 0
    if suffix == ".xml" and "<annotation" in _head(path):
        src = path.parent.parent if path.parent.name == "Annotations" else path.parent
        return "voc", src, sum(1 for p in path.parent.glob("*.xml") if p != path)
    return None, path, 0

