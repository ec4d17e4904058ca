"""Folders made and unmade, and what an OSError means to a user: one copy for the project store
and the exporters."""
from __future__ import annotations

import errno
from pathlib import Path

from .errors import BadInput

__all__ = ["make_dirs", "os_cause", "remove_empty_dirs"]

_CAUSES = {errno.ENOSPC: "the disk is full (no space left on device)", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied (read-only?)",
           errno.EPERM: "operation not permitted (read-only?)"}


def os_cause(exc: OSError) -> str:
    """The plain cause of an OSError: disk full, read-only, ... (else the system's own words)."""
    return _CAUSES.get(exc.errno, exc.strerror or str(exc))


def remove_empty_dirs(made: list[Path]) -> None:
    """Remove the folders ``make_dirs`` made, innermost first; one someone filled meanwhile stays."""
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            break


def make_dirs(folder: Path, field: str) -> list[Path]:
    """mkdir -p that returns the folders this call created (outermost first), and only those; on
    failure it removes what it made and raises BadInput naming the folder and ``field``."""
    missing = [d for d in (folder, *folder.parents) if not d.exists()][::-1]
    made: list[Path] = []
    for d in missing:
        try:
            d.mkdir()
            made.append(d)
        except FileExistsError:
            pass
        except OSError as exc:
            remove_empty_dirs(made)
            raise BadInput(str(d), field, f"cannot create the folder: {os_cause(exc)}") from None
    return made
