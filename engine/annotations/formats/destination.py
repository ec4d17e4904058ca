"""Where an export may write, and how: every format's writer runs inside `staged_export`.

- A destination that holds the project file or any of its images is refused, with or without
  ``overwrite``: an export copies images, and copying onto a source destroys it.
- A non-empty destination is refused unless ``overwrite``; then the files the export writes
  replace same-named files there and every other file is left alone (nothing is deleted that the
  export did not write, even in a folder like the home folder).
- The writer fills a staging folder beside the destination, which is renamed into place (or,
  into an existing folder, moved in file by file) only when the whole export succeeded: a failed
  export leaves no half-written folder and changes no file.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable

from ..errors import BadInput
from ..fsutil import make_dirs, os_cause
from ..limits import check_name

_STAGING: dict[str, Path] = {}  # staging folder -> the destination it becomes


def final_destination(path: Path) -> Path:
    """The folder the user asked for, when `path` is (inside) a staging folder; else `path` itself.

    For writers that record their own location in a file (YOLO's data.yaml).
    """
    path = Path(path).absolute()
    for staging, dst in _STAGING.items():
        if path == Path(staging) or Path(staging) in path.parents:
            return dst / path.relative_to(staging)
    return path


def check_destination(store, dst: Path, overwrite: bool = False) -> None:
    """BadInput when exporting `store` into `dst` could destroy data (see the module docstring)."""
    dst = Path(dst).absolute()
    if dst.exists() and not dst.is_dir():
        raise BadInput(str(dst), "DST", "exists and is not a folder; an export writes a folder "
                       "(annotation files and copies of the images)")
    real = os.path.realpath(dst).rstrip(os.sep) + os.sep

    def inside(p) -> bool:
        return os.path.realpath(p).startswith(real)

    if inside(store.path):
        raise BadInput(str(dst), "DST", f"holds the project {store.path.name}; export into a folder of its own")
    for rec in store.images():
        if inside(store.root / rec.path):
            raise BadInput(str(dst), "DST", f"holds the project's image {rec.path}; an export copies images "
                           "and would overwrite it. Export into a folder of its own")
    if not overwrite and dst.is_dir() and any(os.scandir(dst)):
        raise BadInput(str(dst), "DST", "the folder is not empty; export into a new or empty folder, or pass "
                       "--overwrite to replace the same-named files in it")
    for i, c in enumerate(store.categories()):  # projects made before names were checked
        try:
            check_name(c.name, str(store.path), f"categories[{i}].name")
        except BadInput as exc:
            raise BadInput(exc.problem.file, exc.problem.field, exc.problem.message +
                           "; rename the category before exporting") from None


def staged_export(store, dst: Path, write: Callable[[Path], dict], overwrite: bool = False) -> dict:
    """Run `write(staging_folder)` and publish its files at `dst`; returns its summary with the
    staging path replaced by `dst`. BadInput names `dst` and the cause when the disk is full or
    read-only."""
    dst = Path(dst).absolute()
    check_destination(store, dst, overwrite)
    made = make_dirs(dst.parent, "DST")
    staging = _staging_folder(dst)
    _STAGING[str(staging)] = dst
    try:
        summary = write(staging)
        _publish(staging, dst)
    except OSError as exc:
        # name the file being written, as the user will see it, not the image being read
        # (a full disk during a copy reports the source as exc.filename)
        written = next((str(f) for f in (exc.filename2, exc.filename) if f and str(f).startswith(str(staging))), None)
        what = f" (writing {final_destination(Path(written))})" if written else ""
        raise BadInput(str(dst), "DST", f"the export failed and nothing was written: {os_cause(exc)}{what}") from None
    finally:
        _STAGING.pop(str(staging), None)
        shutil.rmtree(staging, ignore_errors=True)
        if not dst.exists():
            for d in reversed(made):
                try:
                    d.rmdir()
                except OSError:
                    break
    return _renamed(summary, str(staging), str(dst))



def _staging_folder(dst: Path) -> Path:
    """A new hidden folder beside `dst` (same file system, so publishing is a rename)."""
    for parent in (dst.parent, dst):  # beside it, or inside an existing dst whose parent is read-only
        if parent == dst and not dst.is_dir():
            break
        try:
            staging = parent / f".{dst.name}.export-{secrets.token_hex(4)}"
            staging.mkdir(mode=0o777)  # the umask applies, as for any folder the user creates
            return staging
        except OSError as exc:
            last = exc
    raise BadInput(str(dst), "DST", f"cannot write here: {os_cause(last)}")


def _publish(staging: Path, dst: Path) -> None:
    if not dst.exists():
        os.rename(staging, dst)
        return
    if not any(os.scandir(dst)):
        os.rmdir(dst)
        os.rename(staging, dst)
        return
    for folder, dirs, files in os.walk(staging):
        rel = os.path.relpath(folder, staging)
        target_dir = dst if rel == "." else dst / rel
        if target_dir.exists() and not target_dir.is_dir():
            raise BadInput(str(target_dir), "DST", "a file is in the way of a folder the export writes")
        target_dir.mkdir(exist_ok=True)
        for name in files:
            target = target_dir / name
            if target.is_dir():
                raise BadInput(str(target), "DST", "a folder is in the way of a file the export writes")
            try:
                os.replace(os.path.join(folder, name), target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.move(os.path.join(folder, name), target)


def _renamed(obj, old: str, new: str):
    if isinstance(obj, str):
        return new + obj[len(old):] if obj.startswith(old) else obj
    if isinstance(obj, dict):
        return {k: _renamed(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renamed(v, old, new) for v in obj]
    return obj


