"""Pascal VOC and YOLO export + import speed on a synthetic project.

    python -m benchmarks.voc_yolo_io [--images 1000] [--per-image 20]

Each image (a flat 640x480 PNG, real header) gets per_image objects: half boxes, half polygons of
8..24 vertices. Prints one JSON object with, per format, export_s (files + image copies),
import_s (read + validate + store), the annotation counts, and images_per_s for the import.
VOC writes one box per object (a polygon as its tight box) and converts the PNGs to
JPEGImages/<id>.jpg (counted in images_converted); YOLO writes segment rows (auto: the project has
polygons), boxes as their 4 corners.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_project(folder: Path, n_images: int, per_image: int, seed: int = 0):
    from PIL import Image

    from engine.annotations.model import Annotation, Box, Polygon
    from engine.annotations.store import ProjectStore

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.new("L", (640, 480)).save(buf, format="PNG")
    png = buf.getvalue()
    (folder / "images").mkdir(parents=True, exist_ok=True)
    store = ProjectStore.create(folder / "p.vbproj")
    cats = [store.add_category(f"class_{c}") for c in range(10)]
    anns = []
    with store.transaction():
        for i in range(n_images):
            f = folder / "images" / f"img_{i:05d}.png"
            f.write_bytes(png)
            rec = store.add_image(f, 640, 480, split="val" if i % 5 == 0 else "train")
            for k in range(per_image):
                cx, cy, r = rng.uniform(40, 600), rng.uniform(40, 440), rng.uniform(5, 38)
                cat = cats[int(rng.integers(0, 10))].id
                if k % 2:
                    n = int(rng.integers(8, 25))
                    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
                    rad = r * rng.uniform(0.6, 1.0, n)
                    g = Polygon(tuple((float(cx + a * math.cos(t)), float(cy + a * math.sin(t)))
                                      for a, t in zip(rad, ang)))
                else:
                    g = Box(round(cx - r), round(cy - r), round(cx + r), round(cy + 0.5 * r))
                anns.append(Annotation(rec.id, cat, g))
        store.bulk_insert_annotations(anns)
    return store


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--per-image", type=int, default=20)
    args = ap.parse_args(argv)

    from engine.annotations.formats import export_from, import_into
    from engine.annotations.store import ProjectStore

    result: dict = {"images": args.images, "annotations": args.images * args.per_image}
    with tempfile.TemporaryDirectory(prefix="voc_yolo_io_") as tmp:
        tmp = Path(tmp)
        store = make_project(tmp / "src", args.images, args.per_image)
        for fmt in ("voc", "yolo"):
            t0 = time.perf_counter()
            summary = export_from(store, fmt, tmp / f"{fmt}_out")
            export_s = time.perf_counter() - t0
            other = ProjectStore.create(tmp / f"{fmt}_proj" / "p.vbproj")
            t0 = time.perf_counter()
            report = import_into(other, fmt, tmp / f"{fmt}_out")
            import_s = time.perf_counter() - t0
            other.close()
            result[fmt] = {"export_s": round(export_s, 3), "import_s": round(import_s, 3),
                           "images_per_s_import": round(report.images_added / import_s, 1),
                           "annotations_imported": report.annotations_added,
                           "not_exported_total": summary["not_exported_total"]}
            if fmt == "voc":
                result[fmt]["images_converted"] = summary["images_converted_to_jpeg"]
        store.close()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
