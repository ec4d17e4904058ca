"""The bad-input list of issue 2, for every format, through the command line a user types.

For each (format, case): `visionbench import FORMAT SRC --project P` into a project that already
holds work exits 2, its stderr names the file and the field, and the project is unchanged (also on
disk: no stray files). Then `--skip-invalid` exits 0, imports exactly the valid part and lists the
rest in "skipped" - or, when nothing in SRC is usable at all (a malformed COCO file, unreadable YOLO
or mask class names), exits 2 and leaves the project unchanged again.

Cases a format cannot have are left out: YOLO files declare no image size, ids or paths; LabelMe
names categories by label (any label is a category); mask PNGs hold no paths or coordinates.
Each source is a real export of a small project (images a.png 20x10 and b.png 16x12, a box and a
polygon on each) made once per format, then damaged.
"""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import cli
from engine.annotations import Annotation, Box, Polygon, ProjectStore
from engine.annotations.formats import export_from
from tests.engine.formats.strategies import ImageSpec, build_project, write_bomb_png, write_png

OBJECTS = ((0, Box(1, 1, 6, 5), None), (1, Polygon(((8, 2), (14, 2), (11, 8))), None))
SPEC = [ImageSpec("a.png", 20, 10, "train", OBJECTS), ImageSpec("b.png", 16, 12, "val", OBJECTS)]
FORMATS = ("coco", "voc", "yolo", "labelme", "masks")


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli_bad_input")
    store = build_project(root / "project", SPEC)
    try:
        # VOC keeps a.png/b.png as they are (the cases below edit files by those names)
        return {fmt: (export_from(store, fmt, root / fmt, **({"keep_image_format": True} if fmt == "voc" else {})),
                      root / fmt)[1] for fmt in FORMATS}
    finally:
        store.close()


# ---- editing a source ----------------------------------------------------------------------

def find(src: Path, name: str, under: str = "") -> Path:
    """The one file called `name` in src (below the folder `under` when given)."""
    found = [p for p in (src / under if under else src).rglob(name) if p.is_file()]
    assert len(found) == 1, (name, found)
    return found[0]


def edit_json(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data, (path, old)
    path.write_bytes(data.replace(old, new, 1))


def outside_file(src: Path) -> Path:
    """A real image next to (not inside) the source folder."""
    return write_png(src.parent / "outside.png", 16, 12)


def bomb_b(src: Path, under: str = "") -> None:
    write_bomb_png(find(src, "b.png", under))


def garbage_b(src: Path, under: str = "") -> None:
    find(src, "b.png", under).write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")


def b_index_png(src: Path, values: np.ndarray) -> None:
    Image.fromarray(values.astype(np.uint8), mode="L").save(find(src, "b.png", "SegmentationClass"))


def _voc_b_xml(src: Path) -> Path:
    return src / "Annotations" / "b.xml"


def _yolo_b_txt(src: Path) -> Path:
    return find(src, "b.txt", "labels")


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def _yolo_first_line(src: Path, line: str) -> None:
    f = _yolo_b_txt(src)
    lines = f.read_text().splitlines()
    f.write_text("\n".join([line] + lines[1:]) + "\n")


def _labelme_b(src: Path, fn) -> None:
    edit_json(find(src, "b.json"), fn)


def _embedded_bomb(doc: dict, src: Path) -> None:
    bomb = write_bomb_png(src.parent / "bomb.png")
    doc.update(imagePath="gone.png", imageData=base64.b64encode(bomb.read_bytes()).decode())


# (format, case, edit(src), file named, field named, (images, annotations) imported with
#  --skip-invalid, or None when nothing in SRC is usable)
CASES = [
    # COCO: one annotations.json; a: 2 annotations, b: 2 annotations
    ("coco", "malformed JSON", lambda s: (s / "annotations.json").write_text('{"images": [\n{"id": 1,,}\n]}'),
     "annotations.json", "json", None),
    ("coco", "non-UTF-8 text", lambda s: replace_bytes(s / "annotations.json", b'"cat"', b'"c\xffat"'),
     "annotations.json", "json", None),
    ("coco", "missing image", lambda s: find(s, "b.png").unlink(), "annotations.json", "images[1].file_name", (1, 2)),
    ("coco", "unreadable image", garbage_b, "annotations.json", "images[1]", (1, 2)),
    ("coco", "size disagrees with the file", lambda s: edit_json(s / "annotations.json",
                                                                 lambda d: d["images"][1].update(width=17)),
     "annotations.json", "images[1]", (1, 2)),
    ("coco", "unknown category", lambda s: edit_json(s / "annotations.json",
                                                     lambda d: d["annotations"][0].update(category_id=99)),
     "annotations.json", "annotations[0].category_id", (2, 3)),
    ("coco", "coordinates outside the image", lambda s: edit_json(
        s / "annotations.json", lambda d: d["annotations"][2].update(bbox=[100, 1, 5, 5])),
     "annotations.json", "annotations[2].bbox", (2, 3)),
    ("coco", "duplicate ids", lambda s: edit_json(s / "annotations.json",
                                                  lambda d: d["annotations"][3].update(id=d["annotations"][2]["id"])),
     "annotations.json", "annotations[2].id", (2, 2)),
    ("coco", "dot-dot path", lambda s: (outside_file(s), edit_json(
        s / "annotations.json", lambda d: d["images"][1].update(file_name="../outside.png"))),
     "annotations.json", "images[1].file_name", (1, 2)),
    ("coco", "absolute path", lambda s: edit_json(
        s / "annotations.json", lambda d: d["images"][1].update(file_name=str(outside_file(s)))),
     "annotations.json", "images[1].file_name", (1, 2)),
    ("coco", "decompression bomb", bomb_b, "annotations.json", "images[1]", (1, 2)),

    # VOC: Annotations/{a,b}.xml, two boxes each (VOC holds boxes: the polygon is written as its box), class_names.txt
    ("voc", "malformed XML", lambda s: _voc_b_xml(s).write_text("<annotation><filename>b.png</filename>\n<size>"),
     "b.xml", "xml", (1, 2)),
    ("voc", "non-UTF-8 text", lambda s: replace_bytes(_voc_b_xml(s), b"<name>cat", b"<name>c\xe9at"),
     "b.xml", "encoding", (1, 2)),
    ("voc", "missing image", lambda s: find(s, "b.png").unlink(), "b.xml", "filename", (1, 2)),
    ("voc", "unreadable image", garbage_b, "b.xml", "filename", (1, 2)),
    ("voc", "size disagrees with the file", lambda s: replace_bytes(_voc_b_xml(s), b"<width>16<", b"<width>17<"),
     "b.xml", "size.width", (1, 2)),
    ("voc", "unknown category", lambda s: replace_bytes(_voc_b_xml(s), b"<name>cat<", b"<name>cta<"),
     "b.xml", "object[0].name", (2, 3)),
    ("voc", "coordinates outside the image", lambda s: replace_bytes(_voc_b_xml(s), b"<xmax>6<", b"<xmax>300<"),
     "b.xml", "object[0].bndbox", (2, 3)),
    ("voc", "duplicate ids (two files for one image)",
     lambda s: replace_bytes(_voc_b_xml(s), b"<filename>b.png<", b"<filename>a.png<"), "b.xml", "filename", (1, 2)),
    ("voc", "dot-dot path", lambda s: (outside_file(s), replace_bytes(
        _voc_b_xml(s), b"<filename>b.png<", b"<filename>../../outside.png<")), "b.xml", "filename", (1, 2)),
    ("voc", "absolute path", lambda s: replace_bytes(
        _voc_b_xml(s), b"<filename>b.png<", f"<filename>{outside_file(s)}<".encode()), "b.xml", "filename", (1, 2)),
    ("voc", "decompression bomb", bomb_b, "b.xml", "filename", (1, 2)),

    # YOLO: images/{train,val}/, labels/{train,val}/{a,b}.txt, 2 lines each
    ("yolo", "malformed line", lambda s: _append(_yolo_b_txt(s), "0 0.5 0.5 0.2\n"), "b.txt", "line", (2, 4)),
    ("yolo", "malformed data.yaml", lambda s: (s / "data.yaml").write_text("names: [cat, dog\ntrain: x\n"),
     "data.yaml", "yaml", None),
    ("yolo", "non-UTF-8 text", lambda s: _yolo_b_txt(s).write_bytes(b"0 0.5 0.5 0.2 0.2 \xff\n"),
     "b.txt", "encoding", (1, 2)),
    ("yolo", "missing image", lambda s: find(s, "b.png").unlink(), "b.txt", "image", (1, 2)),
    ("yolo", "unreadable image", garbage_b, "b.png", "image", (1, 2)),
    ("yolo", "unknown category", lambda s: _yolo_first_line(s, "7 0.5 0.5 0.2 0.2"), "b.txt", "class", (2, 3)),
    ("yolo", "coordinates outside the image", lambda s: _yolo_first_line(s, "0 1.5 0.5 0.2 0.2"),
     "b.txt", "coordinates", (2, 3)),
    ("yolo", "decompression bomb", bomb_b, "b.png", "image", (1, 2)),

    # LabelMe: {a,b}.json beside their images, 2 shapes each
    ("labelme", "malformed JSON", lambda s: find(s, "b.json").write_text('{"shapes": [\n\n {"label": }]}'),
     "b.json", "json", (1, 2)),
    ("labelme", "non-UTF-8 text", lambda s: replace_bytes(find(s, "b.json"), b'"cat"', b'"c\xffat"'),
     "b.json", "json", (1, 2)),
    ("labelme", "missing image", lambda s: find(s, "b.png").unlink(), "b.json", "imagePath", (1, 2)),
    ("labelme", "unreadable image", garbage_b, "b.json", "imagePath", (1, 2)),
    ("labelme", "size disagrees with the file", lambda s: _labelme_b(s, lambda d: d.update(imageWidth=17)),
     "b.json", "imagePath", (1, 2)),
    ("labelme", "coordinates outside the image",
     lambda s: _labelme_b(s, lambda d: d["shapes"][0].update(points=[[1, 1], [300, 5]])),
     "b.json", "shapes[0].points", (2, 3)),
    ("labelme", "duplicate ids (two files for one image)",
     lambda s: _labelme_b(s, lambda d: d.update(imagePath="a.png", imageWidth=20, imageHeight=10)),
     "b.json", "imagePath", (1, 2)),
    ("labelme", "dot-dot path", lambda s: (outside_file(s), _labelme_b(
        s, lambda d: d.update(imagePath="../" * (len(find(s, "b.json").relative_to(s).parts)) + "outside.png"))),
     "b.json", "imagePath", (1, 2)),
    ("labelme", "absolute path", lambda s: _labelme_b(s, lambda d: d.update(imagePath=str(outside_file(s)))),
     "b.json", "imagePath", (1, 2)),
    ("labelme", "decompression bomb", bomb_b, "b.json", "imagePath", (1, 2)),
    ("labelme", "decompression bomb as imageData", lambda s: _labelme_b(s, lambda d: _embedded_bomb(d, s)),
     "b.json", "imageData", (1, 2)),

    # mask PNGs: class_names.txt, JPEGImages/, SegmentationClass/, SegmentationObject/; 2 objects per image
    ("masks", "malformed (unreadable) class PNG", lambda s: find(s, "b.png", "SegmentationClass").write_bytes(b"junk"),
     "b.png", "image", (1, 2)),
    ("masks", "non-UTF-8 text", lambda s: (s / "class_names.txt").write_bytes(b"_background_\nc\xffat\ndog\n"),
     "class_names.txt", "class_names.txt", None),
    ("masks", "missing image", lambda s: find(s, "b.png", "JPEGImages").unlink(), "b.png", "image", (1, 2)),
    ("masks", "unreadable image", lambda s: garbage_b(s, "JPEGImages"), "b.png", "image", (1, 2)),
    ("masks", "size disagrees with the file", lambda s: b_index_png(s, np.zeros((5, 5))), "b.png", "size", (1, 2)),
    ("masks", "unknown category", lambda s: b_index_png(s, np.full((12, 16), 7)), "b.png", "class index", (1, 2)),
    ("masks", "duplicate ids (two images, one mask name)",
     lambda s: shutil.copy(find(s, "b.png", "JPEGImages"), find(s, "b.png", "JPEGImages").with_suffix(".bmp")),
     "b.png", "image", (1, 2)),
    ("masks", "decompression bomb", lambda s: bomb_b(s, "JPEGImages"), "b.png", "image", (1, 2)),
]


# ---- the project that must stay unchanged --------------------------------------------------

@pytest.fixture
def project(tmp_path) -> Path:
    """A project holding earlier work: one image, one category, one annotation."""
    path = tmp_path / "work" / "p.vbproj"
    with ProjectStore.create(path) as s:
        rec = s.add_image(write_png(tmp_path / "work" / "old.png", 8, 8), 8, 8)
        s.add_annotation(Annotation(rec.id, s.add_category("old").id, Box(1, 1, 2, 2)))
    return path


def snapshot(path: Path) -> tuple:
    """Everything a user could see of the project: rows and the files in its folder."""
    with ProjectStore(path, readonly=True) as s:
        rows = (tuple(s.images()), tuple(s.categories()),
                tuple(sorted((a.id, a.image_id, a.category_id, repr(a.geometry))
                             for anns in s.all_annotations().values() for a in anns)))
    files = sorted(p.relative_to(path.parent).as_posix() for p in path.parent.rglob("*")
                   if not p.name.endswith(("-wal", "-shm", ".lock")))
    return rows, files


@pytest.mark.parametrize("fmt, case, edit, file, field, kept", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_input_through_the_cli(exports, tmp_path, project, capsys, fmt, case, edit, file, field, kept):
    src = tmp_path / "src"
    shutil.copytree(exports[fmt], src)
    edit(src)
    before = snapshot(project)
    capsys.readouterr()

    assert cli.main(["import", fmt, str(src), "--project", str(project)]) == 2
    err = capsys.readouterr().err
    named = [ln for ln in err.splitlines() if file in ln and f"{field}" in ln]
    assert named, f"no line names {file} and {field}:\n{err}"
    assert "Traceback" not in err and "internal error" not in err
    assert snapshot(project) == before

    code = cli.main(["import", fmt, str(src), "--project", str(project), "--skip-invalid"])
    out, err = capsys.readouterr()
    if kept is None:  # nothing usable: still bad input, still nothing written
        assert code == 2 and file in err and field in err
        assert snapshot(project) == before
        return
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["images_added"], summary["annotations_added"]) == kept
    assert any(file in s and field in s for s in summary["skipped"]), summary["skipped"]
    assert summary["totals"]["images"] == 1 + kept[0]


def test_every_format_has_the_bad_input_cases_it_can_have():
    cases = {}
    for fmt, case, *_ in CASES:
        cases.setdefault(fmt, set()).add(case.split(" (")[0])
    common = {"missing image", "unreadable image", "coordinates outside the image", "non-UTF-8 text",
              "decompression bomb"}
    assert all(common - {"coordinates outside the image"} <= cases[f] for f in FORMATS)
    assert {"malformed JSON", "size disagrees with the file", "unknown category", "duplicate ids", "dot-dot path",
            "absolute path"} <= cases["coco"]
    assert {"malformed XML", "size disagrees with the file", "unknown category", "duplicate ids", "dot-dot path",
            "absolute path"} <= cases["voc"]
    assert {"malformed JSON", "size disagrees with the file", "duplicate ids", "dot-dot path",
            "absolute path"} <= cases["labelme"]
    assert {"malformed line", "malformed data.yaml", "unknown category"} <= cases["yolo"]
    assert {"size disagrees with the file", "unknown category", "duplicate ids"} <= cases["masks"]
