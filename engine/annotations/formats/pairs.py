"""Image pairs (A -> B) for image-to-image models <-> project.

Where a project keeps the target of an image: the image ``DIR/NAME.EXT`` has its target B at
``DIR.targets/NAME.png`` (a sibling folder; see :func:`target_path`). The image itself is A. The
galaxies demo stores its noise-free model there, and this format writes imported pairs so.

Import (SRC), two layouts:

- a folder of A|B images, A on the left half and B on the right (the pix2pix convention); the
  width must be even;
- a folder with subfolders ``A/`` and ``B/`` holding images of the same names (any image suffix),
  A and B of the same size.

Either may sit in ``train/``, ``val/``, ``test/`` subfolders, which give the split (else "train").
A and B are written as PNGs under ``<project folder>/<SRC name>_pairs/<split>/`` and its
``.targets`` sibling (A|B halves are new files; copies keep the convention for A/ B/ too).
Problems name the file: a B that misses its A (or the other way), A and B of different sizes,
an A|B image of odd width.

Export (DST): one A|B PNG per image that has a target, ``DST/<split>/<name>.png``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..bundle import ImageEntry, ImportBundle
from ..errors import BadInput, Problem
from ..imageio import is_image_file, read_image_rgb
from ..model import SPLITS
from .common import ProgressFn, atomic_write_bytes, export_items, export_names, ticking

TARGETS_SUFFIX = ".targets"


def target_path(image_file: str | Path) -> Path:
    """Where the target (B) of the project image ``image_file`` (A) lives: ``DIR.targets/NAME.png``."""
    p = Path(image_file)
    return p.parent.with_name(p.parent.name + TARGETS_SUFFIX) / (p.stem + ".png")


def read_target(image_file: str | Path) -> np.ndarray | None:
    """The target of an image as uint8 RGB [H, W, 3], None when it has none."""
    t = target_path(image_file)
    return read_image_rgb(t) if t.is_file() else None


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and is_image_file(p)}


def _png(picture: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(picture[:, :, ::-1]))
    if not ok:
        raise OSError("PNG encoding failed")
    return data.tobytes()


class PairsBundle(ImportBundle):
    """An ImportBundle whose entries still need their A and B files written (``prepare``)."""

    def __init__(self, src: Path) -> None:
        super().__init__()
        self.src = src
        self.pictures: list[tuple[ImageEntry, str, np.ndarray, np.ndarray]] = []  # (entry, name, A, B)


def _entry(folder: Path, stem: str, a: np.ndarray, split: str, source: Path) -> ImageEntry:
    # The file is written by ``prepare``; until then the entry points nowhere, so the bundle's
    # check of image files (their size against the entry's) leaves the decoded pixels alone.
    pending = folder / ".pairs-not-written" / f"{stem}.png"
    return ImageEntry(pending, a.shape[1], a.shape[0], split, source=source)


def _read_split(bundle: PairsBundle, folder: Path, split: str, problems: list[Problem]) -> None:
    a_dir, b_dir = folder / "A", folder / "B"
    if a_dir.is_dir() or b_dir.is_dir():
        a_files = _images(a_dir) if a_dir.is_dir() else {}
        b_files = _images(b_dir) if b_dir.is_dir() else {}
        for stem in sorted(set(a_files) | set(b_files)):
            if stem not in b_files:
                problems.append(Problem(str(a_files[stem]), "B", f"no partner named {stem}.* in {b_dir}"))
                continue
            if stem not in a_files:
                problems.append(Problem(str(b_files[stem]), "A", f"no partner named {stem}.* in {a_dir}"))
                continue
            a, b = read_image_rgb(a_files[stem]), read_image_rgb(b_files[stem])
            if a.shape != b.shape:
                problems.append(Problem(str(b_files[stem]), "size",
                                        f"B is {b.shape[1]}x{b.shape[0]} px but its A {a_files[stem].name} is "
                                        f"{a.shape[1]}x{a.shape[0]} px; a pair must have one size"))
                continue
            bundle.pictures.append((_entry(folder, stem, a, split, a_files[stem]), stem, a, b))
        return
    for stem, file in _images(folder).items():
        ab = read_image_rgb(file)
        w = ab.shape[1]
        if w % 2:
            problems.append(Problem(str(file), "width", f"an A|B image must be of even width (A left, B right), "
                                                        f"this one is {w} px"))
            continue
        a = ab[:, : w // 2]
        bundle.pictures.append((_entry(folder, stem, a, split, file), stem, a, ab[:, w // 2:]))


def read(src: Path, *, skip_invalid: bool = False, progress: ProgressFn | None = None) -> PairsBundle:
    src = Path(src)
    if not src.is_dir():
        raise BadInput(str(src), "SRC", "a pairs import reads a folder (A|B images, or A/ and B/ subfolders)")
    bundle = PairsBundle(src)
    split_dirs = [(src / s, s) for s in SPLITS if (src / s).is_dir()]
    for folder, split in split_dirs or [(src, "train")]:
        _read_split(bundle, folder, split, bundle.problems)
    if not bundle.pictures and not bundle.problems:
        raise BadInput(str(src), "SRC", "no image pairs found (A|B images, or A/ and B/ subfolders with the "
                       "same names)")
    bundle.images = [entry for entry, *_ in bundle.pictures]
    if progress is not None:
        for k, _ in enumerate(bundle.images, start=1):
            progress(k, len(bundle.images), "read")
    return bundle


def prepare(bundle: PairsBundle, store) -> list[Path]:
    """Write every pair's A and B as PNGs into the project folder (A where the entry points, B at its
    ``target_path``); returns the files written, so a failed import can remove them."""
    written: list[Path] = []
    base = Path(store.root) / f"{bundle.src.name}_pairs"
    keep = {id(e) for e in bundle.images}  # entries validation left in the bundle
    for entry, name, a, b in bundle.pictures:
        if id(entry) not in keep:
            continue
        a_file = base / entry.split / f"{name}.png"
        for file, picture in ((a_file, a), (target_path(a_file), b)):
            for folder in (file.parent, file.parent.parent):
                if not folder.exists():
                    folder.mkdir(parents=True)
                    written.append(folder)
            atomic_write_bytes(file, _png(picture))
            written.append(file)
        entry.file = a_file
    # folders last, deepest first: a failed import removes files before their folders
    return [p for p in written if p.is_file()] + sorted((p for p in written if not p.is_file()),
                                                       key=lambda p: -len(p.parts))


def write(store, dst: Path, *, split: str | None = None, progress: ProgressFn | None = None) -> dict:
    """One A|B PNG per image that has a target, in DST/<split>/. Never modifies the store."""
    dst = Path(dst)
    items = export_items(store, split)
    names = export_names([rec for rec, _ in items])
    written, without = 0, 0
    for rec, _ in ticking(items, progress, "write"):
        a_file = store.image_path(rec)
        b = read_target(a_file)
        if b is None:
            without += 1
            continue
        a = read_image_rgb(a_file)
        if a.shape != b.shape:
            raise BadInput(str(target_path(a_file)), "size", f"the target is {b.shape[1]}x{b.shape[0]} px but its "
                           f"image is {a.shape[1]}x{a.shape[0]} px")
        atomic_write_bytes(dst / rec.split / (Path(names[rec.id]).stem + ".png"), _png(np.concatenate([a, b], 1)))
        written += 1
    return {"format": "pairs", "folder": str(dst), "pairs": written, "images_without_target": without}
