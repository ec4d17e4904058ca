"""File > Add images: header probing runs as a background job, rows are inserted on the GUI thread.

Reading thousands of image headers takes seconds, so `probe_folder_job` (a plain engine job,
no Qt) runs on a worker thread via the window's JobBridge and returns what it found; the
project store is only touched afterwards, on the GUI thread, in one transaction (the store
belongs to that thread and holds the project's write lock).
"""
from __future__ import annotations

from pathlib import Path

from engine.annotations.errors import BadInput
from engine.annotations.imageio import is_image_file, probe_image
from engine.annotations.interop import find_annotations
from engine.annotations.store import ProjectStore
from engine.jobs import Progress

REPORT_EVERY = 50  # files between progress events (each is also a cancel point)


def probe_folder_job(token, folder: str, recursive: bool = True):
    """Yield Progress while probing; return {"found": [(path, w, h)], "skipped": [(path, reason)],
    "annotations": [FoundAnnotations]}: annotation files other tools left beside the images are
    offered for import, never reported as skipped files."""
    root = Path(folder)
    if not root.is_dir():
        raise BadInput(str(root), "folder", "not a folder")
    files = sorted(p for p in (root.rglob("*") if recursive else root.glob("*")) if p.is_file())
    found, skipped, others = [], [], []
    for i, f in enumerate(files):
        if i % REPORT_EVERY == 0:
            yield Progress(i, len(files), f.name)
        if not is_image_file(f):
            others.append(f)
            continue
        try:
            w, h = probe_image(f)
        except BadInput as exc:
            skipped.append((str(f), exc.problem.message))
            continue
        found.append((str(f), w, h))
    annotations = find_annotations(root, others)
    offered = {str(p) for found_here in annotations for p in found_here.paths}
    skipped += [(str(f), "not an image file type") for f in others if str(f) not in offered]
    skipped.sort()
    yield Progress(len(files), len(files), "done")
    return {"found": found, "skipped": skipped, "annotations": annotations}


def insert_found(store: ProjectStore, found: list[tuple[str, int, int]], split: str = "train") -> tuple[int, int]:
    """Add the probed images not yet in the project, in one transaction. Returns (added, already there)."""
    added = known = 0
    with store.transaction():
        for path, w, h in found:
            if store.image_by_path(store._rel(Path(path))) is not None:
                known += 1
                continue
            store.add_image(path, w, h, split=split)
            added += 1
    return added, known
