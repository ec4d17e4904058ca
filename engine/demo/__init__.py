"""The demo projects: real sample photos plus two synthetic sets with exact ground truth.

`build_demo(out)` writes, under `out`:
    photos.vbproj    + photos/     scikit-image's sample photos, a few hand-placed labels
    shapes.vbproj    + shapes/     circles/rectangles/triangles, Box + MaskRLE per object (shared instance_id)
    galaxies.vbproj  + galaxies/   Sersic galaxies with clumps, MaskRLE per object; fields re-observed
                                   (new noise, PSF, rotation), galaxies carry an `identity` attribute
    glyphs.vbproj    + glyphs/     handwritten-like glyph identities, 10 renderings each (one-shot learning)
Everything is deterministic for a seed.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from engine.annotations.errors import BadInput

from .galaxies import build_galaxies
from .glyphs import build_glyphs
from .photos import build_photos
from .shapes import build_shapes

PROJECTS = ("photos", "shapes", "galaxies", "glyphs")

# progress(stage, done, total); stage is one of PROJECTS
StageProgress = Callable[[str, int, int], None]


def build_demo(out: str | os.PathLike, seed: int = 0, n_shapes: int = 400, n_galaxies: int = 400,
               progress: StageProgress | None = None, n_glyphs: int = 300) -> dict[str, Path]:
    """Build the demo projects in `out` (created if needed); returns {name: project path}.

    Refuses (BadInput) when `out` already holds one of the projects, so nothing is overwritten.
    """
    out = Path(out)
    for name in PROJECTS:
        for p in (out / f"{name}.vbproj", out / name):
            if p.exists():
                raise BadInput(str(p), "out", "exists already; choose an empty or new folder")
    if n_shapes < 1 or n_galaxies < 1:
        raise BadInput(str(out), "--shapes/--galaxies", "need at least one image each")
    if n_glyphs < 2:
        raise BadInput(str(out), "--glyphs", "need at least two glyph identities")
    out.mkdir(parents=True, exist_ok=True)

    def stage(name: str):
        return (lambda done, total: progress(name, done, total)) if progress else None

    return {
        "photos": build_photos(out, progress=stage("photos")),
        "shapes": build_shapes(out, n_shapes, seed=seed, progress=stage("shapes")),
        "galaxies": build_galaxies(out, n_galaxies, seed=seed, progress=stage("galaxies")),
        "glyphs": build_glyphs(out, n_glyphs, seed=seed, progress=stage("glyphs")),
    }


def ensure_user_demo(data_home: str | os.PathLike | None = None, progress: StageProgress | None = None,
                     n_shapes: int = 400, n_galaxies: int = 400, n_glyphs: int = 300) -> Path:
    """The per-user demo folder ($XDG_DATA_HOME/visionbench/demo), built on first use; returns it.

    Built in a sibling temporary folder and renamed into place, so an interrupted first run never
    leaves a half-built demo behind (image paths are relative, so the rename keeps projects valid).
    """
    base = Path(data_home or os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    demo = base / "visionbench" / "demo"
    if (demo / "photos.vbproj").exists():
        return demo
    tmp = demo.with_name("demo.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    build_demo(tmp, n_shapes=n_shapes, n_galaxies=n_galaxies, progress=progress, n_glyphs=n_glyphs)
    for lock in tmp.glob("*.lock"):
        lock.unlink()
    if demo.exists():  # a leftover without photos.vbproj: not ours to keep
        shutil.rmtree(demo)
    os.replace(tmp, demo)
    return demo
