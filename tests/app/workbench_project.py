"""Small projects for the workbench tests: a few tiny PNGs, two categories, nothing else."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.annotations import ProjectStore


def make_project(root: Path, n_images: int = 3, size=(40, 30), with_files: bool = True) -> Path:
    """Create root/p.vbproj with `n_images` images (w x h = size) and categories cat, dog; closed again."""
    root.mkdir(parents=True, exist_ok=True)
    store = ProjectStore.create(root / "p.vbproj")
    store.add_category("cat", "#e6194b")
    store.add_category("dog", "#3cb44b")
    w, h = size
    with store.transaction():
        for i in range(n_images):
            f = root / "images" / f"img{i:05d}.png"
            if with_files or i < 3:
                f.parent.mkdir(exist_ok=True)
                px = np.full((h, w, 3), (i * 40) % 255, np.uint8)
                px[5:15, 5:20] = (200, 50, 50)
                Image.fromarray(px).save(f)
            store.add_image(f, width=w, height=h)
    store.close()
    return root / "p.vbproj"
