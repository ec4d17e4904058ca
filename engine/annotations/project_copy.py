"""A self-contained, read-only copy of a project, for training away from the workbench.

``visionbench export project DIR --project P`` writes DIR/<name>.vbproj (a consistent snapshot
of the project database, taken with SQLite's backup API, so the workbench may keep editing P
meanwhile), every image under DIR/images/ with the copy's image paths pointing there, and
DIR/MANIFEST.json (size and SHA-256 of each image). The files are made read-only: a training node
reads the copy exactly as it reads a project (``visionbench train ... --project DIR/<name>.vbproj``)
and nothing writes into it. :func:`check_copy` verifies the images against the manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote

from .errors import BadInput
from .store import ProjectStore

__all__ = ["check_copy", "export_project"]

MANIFEST = "MANIFEST.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_project(store: ProjectStore, dst: str | os.PathLike, overwrite: bool = False, progress=None) -> dict:
    """Copy ``store``'s project and images into ``dst`` (see the module doc). Returns a summary."""
    dst = Path(dst)
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise BadInput(str(dst), "dst", "folder is not empty (give --overwrite to replace a copy made before)")
    records = store.images()
    missing = [store.image_path(r) for r in records if not store.image_path(r).is_file()]
    if missing:
        raise BadInput(str(missing[0]), "image", f"{len(missing)} image file(s) of the project are missing; "
                                                 f"the copy would be incomplete")
    dst.mkdir(parents=True, exist_ok=True)
    target = dst / store.path.name
    if target.exists():
        target.chmod(stat.S_IWUSR | stat.S_IRUSR)
        target.unlink()
    tmp = dst / f".{store.path.name}.copying"
    tmp.unlink(missing_ok=True)
    # The backup API copies a consistent snapshot, WAL included, while another process writes.
    source = sqlite3.connect(f"file:{quote(str(store.path))}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(str(tmp))
        try:
            source.backup(copy)
            names: dict[str, str] = {}
            manifest = {}
            for n, rec in enumerate(records):
                src = store.image_path(rec)
                name = f"images/{rec.path}" if not rec.path.startswith("..") and not os.path.isabs(rec.path) \
                    else f"images/{rec.id}_{src.name}"
                out = dst / name
                out.parent.mkdir(parents=True, exist_ok=True)
                if out.exists():
                    out.chmod(stat.S_IWUSR | stat.S_IRUSR)
                shutil.copyfile(src, out)
                out.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                names[rec.path] = name
                manifest[name] = {"bytes": out.stat().st_size, "sha256": _sha256(out)}
                if progress is not None:
                    progress(n + 1, len(records))
            copy.executemany("UPDATE images SET path=? WHERE path=?", [(new, old) for old, new in names.items()])
            copy.commit()
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, nothing beside it to go stale
        finally:
            copy.close()
    finally:
        source.close()
    os.replace(tmp, target)
    target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    (dst / MANIFEST).write_text(json.dumps({"project": target.name, "source": str(store.path),
                                            "images": manifest}, indent=1), encoding="utf-8")
    return {"project": str(target), "images": len(records), "manifest": str(dst / MANIFEST)}


def check_copy(dst: str | os.PathLike) -> list[str]:
    """Problems of a copy against its manifest ([] when every image is there, whole and unchanged)."""
    dst = Path(dst)
    try:
        manifest = json.loads((dst / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadInput(str(dst / MANIFEST), "manifest", f"cannot read ({exc})") from None
    problems = []
    for name, entry in manifest.get("images", {}).items():
        path = dst / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
            problems.append(f"{path}: changed since the copy was made")
    return problems
