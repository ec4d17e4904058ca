"""COCO import/export speed on a synthetic 100,000-annotation file, against pycocotools' own load.

    python -m benchmarks.coco_io [--images 2000] [--per-image 50] [--repeat 3]

Prints one JSON object: import_s (read + validate + store; read_s and store_s apart), export_s (JSON + image copies),
pycocotools_load_s (COCO(file) on the same file, same run), import_vs_pycocotools (goal <= 3),
peak_rss_mb, and the sizes. On a shared machine one wall-clock sample mostly measures the other
processes, so the import (into a fresh project each time) and pycocotools' load are each timed
`--repeat` times, interleaved, and the best of each is reported (all samples under `*_samples_s`);
CPU seconds are reported too.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_dataset(folder: Path, n_images: int, per_image: int, seed: int = 0) -> Path:
    """Write n_images tiny 640x480 PNGs (real headers) and a COCO file with per_image objects each,
    half polygons (8..24 vertices), half boxes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.new("L", (640, 480)).save(buf, format="PNG")  # one flat image, compresses to ~1 KB
    png = buf.getvalue()
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        name = f"img_{i:05d}.png"
        (folder / "images" / name).write_bytes(png)
        images.append({"id": i + 1, "file_name": name, "width": 640, "height": 480})
        for k in range(per_image):
            cx, cy = rng.uniform(40, 600), rng.uniform(40, 440)
            r = rng.uniform(5, 38)
            cat = int(rng.integers(1, 11))
            if k % 2:
                n = int(rng.integers(8, 25))
                ang = np.sort(rng.uniform(0, 2 * math.pi, n))
                rad = r * rng.uniform(0.6, 1.0, n)
                poly = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).round(2)
                xs, ys = poly[:, 0], poly[:, 1]
                seg = [poly.reshape(-1).tolist()]
                bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min()), float(ys.max() - ys.min())]
            else:
                seg = []
                bbox = [round(cx - r, 2), round(cy - r, 2), round(2 * r, 2), round(1.5 * r, 2)]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat, "segmentation": seg,
                         "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
    cats = [{"id": c, "name": f"class_{c}", "supercategory": "thing"} for c in range(1, 11)]
    path = folder / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _timed(fn):
    """(fn(), (wall seconds, CPU seconds of this process))."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - w, time.process_time() - c)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--per-image", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from pycocotools.coco import COCO

    from engine.annotations.formats import export_from, import_into
    from engine.annotations.store import ProjectStore

    with tempfile.TemporaryDirectory(prefix="coco_io_") as tmp:
        tmp = Path(tmp)
        src = make_dataset(tmp / "src", args.images, args.per_image)

        pycoco_runs, import_runs = [], []
        n = max(1, args.repeat)
        for k in range(n):
            with contextlib.redirect_stdout(io.StringIO()):
                _, t = _timed(lambda: COCO(str(src)))
            pycoco_runs.append(t)
            store = ProjectStore.create(tmp / f"proj{k}" / "p.vbproj")
            parts: dict = {}
            report, t = _timed(lambda: import_into(store, "coco", src, timings=parts))
            import_runs.append((t, parts))
            if k + 1 < n:
                store.close()
        pycoco = (min(w for w, _ in pycoco_runs), min(c for _, c in pycoco_runs))
        (import_wall, _), parts = min(import_runs, key=lambda r: r[0][0])
        import_cpu = min(c for (_, c), _ in import_runs)
        summary, export = _timed(lambda: export_from(store, "coco", tmp / "out"))
        store.close()

    result = {
        "images": report.images_added,
        "annotations": report.annotations_added,
        "exported_annotations": summary["annotations"],
        "import_s": round(import_wall, 3),
        "export_s": round(export[0], 3),
        "pycocotools_load_s": round(pycoco[0], 3),
        "import_vs_pycocotools": round(import_wall / pycoco[0], 2),
        # CPU seconds of this process: steadier than wall time on a shared machine
        "import_cpu_s": round(import_cpu, 3),
        "read_s": round(parts["read_s"], 3),
        "store_s": round(parts["store_s"], 3),
        "read_cpu_s": round(parts["read_cpu_s"], 3),
        "store_cpu_s": round(parts["store_cpu_s"], 3),
        "export_cpu_s": round(export[1], 3),
        "pycocotools_load_cpu_s": round(pycoco[1], 3),
        "import_vs_pycocotools_cpu": round(import_cpu / pycoco[1], 2),
        "import_samples_s": [round(w, 3) for (w, _), _ in import_runs],
        "pycocotools_load_samples_s": [round(w, 3) for w, _ in pycoco_runs],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
