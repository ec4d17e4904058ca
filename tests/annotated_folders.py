"""Folders of images with annotation files as other tools write them, for interop tests.

``x_anylabeling_folder`` is the layout X-AnyLabeling leaves behind when one image is labelled and
saved in its three formats: ``demo.png`` with ``demo.json`` (LabelMe keys plus X-AnyLabeling's
extras), ``Annotations/demo.xml`` (Pascal VOC) and ``labels/demo.txt`` + ``classes.txt`` (YOLO).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

BOXES = [("cat", 4, 6, 30, 28), ("dog", 40, 10, 70, 40), ("cat", 10, 44, 26, 58)]  # label, xyxy px
W, H = 80, 64


def write_image(path: Path, w: int = W, h: int = H) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    px = np.zeros((h, w, 3), np.uint8)
    px[::4] = 90
    Image.fromarray(px).save(path)
    return path


def labelme_json(path: Path, image_name: str, boxes=BOXES, w: int = W, h: int = H) -> Path:
    shapes = [{"label": lab, "points": [[x1, y1], [x2, y2]], "group_id": None, "description": "", "difficult": False,
               "shape_type": "rectangle", "flags": {}, "attributes": {}, "kie_linking": [], "score": None}
              for lab, x1, y1, x2, y2 in boxes]
    doc = {"version": "2.4.4", "flags": {}, "shapes": shapes, "imagePath": image_name, "imageData": None,
           "imageHeight": h, "imageWidth": w, "description": ""}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def voc_xml(path: Path, image_name: str, boxes=BOXES, w: int = W, h: int = H) -> Path:
    objs = "".join(f"<object><name>{lab}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                   f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>" for lab, x1, y1, x2, y2 in boxes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><filename>{image_name}</filename><size><width>{w}</width><height>{h}</height>"
                    f"<depth>3</depth></size>{objs}</annotation>", encoding="utf-8")
    return path


def yolo_txt(path: Path, classes: list[str], boxes=BOXES, w: int = W, h: int = H) -> Path:
    rows = [f"{classes.index(lab)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
            f"{(y2 - y1) / h:.6f}" for lab, x1, y1, x2, y2 in boxes]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def x_anylabeling_folder(root: Path) -> Path:
    """root/demo.png, demo.json, Annotations/demo.xml, labels/demo.txt, classes.txt."""
    write_image(root / "demo.png")
    labelme_json(root / "demo.json", "demo.png")
    voc_xml(root / "Annotations" / "demo.xml", "demo.png")
    classes = ["cat", "dog"]
    (root / "classes.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
    yolo_txt(root / "labels" / "demo.txt", classes)
    return root
