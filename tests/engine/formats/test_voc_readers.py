"""A user exports the photos demo as VOC and trains with torchvision: VOCDetection finds every
image as JPEGImages/<id>.jpg and every object of the project, in both splits.

torchvision's VOCDetection (download=False) opens ROOT/VOCdevkit/VOC2012/ImageSets/Main/<split>.txt
and, for each id in it, JPEGImages/<id>.jpg and Annotations/<id>.xml; so the export is written to
ROOT/VOCdevkit/VOC2012 and ROOT is given as root.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.annotations.formats import export_from, voc
from engine.annotations.geometry import bounds
from engine.annotations.model import Annotation, Box, MaskRLE, Polygon
from engine.annotations.store import ProjectStore
from engine.demo.photos import build_photos


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return build_photos(tmp_path_factory.mktemp("photos"))


def expected_objects(store: ProjectStore) -> dict[str, list[tuple[str, tuple[int, int, int, int]]]]:
    """image stem -> sorted [(category, integer box)]: every annotation with an area is an object
    (the photos demo shares no instance_id), written as its box rounded to whole pixels."""
    names = {c.id: c.name for c in store.categories()}
    anns = store.all_annotations()
    out = {}
    for rec in store.images():
        objs = []
        for a in anns.get(rec.id, []):
            if isinstance(a.geometry, (Box, Polygon, MaskRLE)):
                objs.append((names[a.category_id], tuple(int(np.floor(v + 0.5)) for v in bounds(a.geometry))))
        out[Path(rec.path).stem] = sorted(objs)
    return out


def test_torchvision_voc_detection_reads_the_photos_export_in_both_splits(photos, tmp_path):
    from torchvision.datasets import VOCDetection

    root = tmp_path / "root"
    with ProjectStore(photos, readonly=True) as store:
        summary = export_from(store, "voc", root / "VOCdevkit" / "VOC2012")
        expected = expected_objects(store)
        splits = {Path(r.path).stem: r.split for r in store.images()}
        sizes = {Path(r.path).stem: (r.width, r.height) for r in store.images()}
        non_jpeg = sum(Path(r.path).suffix.lower() not in (".jpg", ".jpeg") for r in store.images())
    assert summary["images_converted_to_jpeg"] == non_jpeg > 0
    assert summary["jpeg_conversion"]["quality"] == 95 and "alpha channel dropped" in summary["jpeg_conversion"]["rule"]
    assert summary["not_exported"] == {"point": 2}  # the cat's eyes: points have no box
    seen = set()
    for split in ("train", "val"):
        ds = VOCDetection(str(root), year="2012", image_set=split, download=False)
        assert len(ds) == sum(s == split for s in splits.values())
        for i in range(len(ds)):
            image, target = ds[i]
            ann = target["annotation"]
            stem = Path(ds.images[i]).stem
            assert ann["filename"] == f"{stem}.jpg" and splits[stem] == split
            assert image.size == sizes[stem] == (int(ann["size"]["width"]), int(ann["size"]["height"]))
            got = sorted((o["name"], tuple(int(o["bndbox"][k]) for k in ("xmin", "ymin", "xmax", "ymax")))
                         for o in ann.get("object", []))
            assert got == expected[stem], stem
            seen.add(stem)
    assert seen == set(expected)
    # the horse is a mask: VOC holds it as its box
    assert [name for name, _ in expected["horse"]] == ["horse"] and summary["boxes_from_outlines"] == 1


def test_conversion_of_16_bit_and_alpha_images_and_keeping_the_originals(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    deep = (np.arange(12 * 10, dtype=np.uint16).reshape(10, 12) * 100 + 1000)  # 1000..12900
    Image.fromarray(deep).save(folder / "deep.png")
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # red, fully transparent
    Image.fromarray(rgba).save(folder / "clear.png")
    with ProjectStore.create(folder / "p.vbproj") as store:
        cat = store.add_category("cat")
        for name in ("deep.png", "clear.png"):
            rec = store.add_image(folder / name)
            store.add_annotations([Annotation(rec.id, cat.id, Box(1, 1, 5, 5))])
        summary = voc.write(store, tmp_path / "out")
        kept = voc.write(store, tmp_path / "kept", keep_image_format=True)
    conv = summary["jpeg_conversion"]
    assert (conv["images"], conv["high_bit_depth_stretched"], conv["alpha_dropped"]) == (2, 1, 1)
    with Image.open(tmp_path / "out" / "JPEGImages" / "deep.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        px = np.asarray(im).astype(int)
    assert abs(px[0, 0, 0] - 0) <= 3 and abs(px[-1, -1, 0] - 255) <= 3  # min..max stretched to 0..255
    with Image.open(tmp_path / "out" / "JPEGImages" / "clear.jpg") as im:
        r, g, b = np.asarray(im).astype(int)[5, 5]
    assert abs(r - 200) <= 4 and g <= 4 and b <= 4  # the colour is kept, the alpha dropped
    assert (tmp_path / "out" / "Annotations" / "deep.xml").read_text().count("<filename>deep.jpg</filename>") == 1
    assert kept["images_converted_to_jpeg"] == 0 and "jpeg_conversion" not in kept
    assert (tmp_path / "kept" / "JPEGImages" / "deep.png").read_bytes() == (folder / "deep.png").read_bytes()
    assert "<filename>deep.png</filename>" in (tmp_path / "kept" / "Annotations" / "deep.xml").read_text()
