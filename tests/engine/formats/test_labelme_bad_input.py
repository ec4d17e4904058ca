"""Bad LabelMe input: the error names the JSON file and the field, the project is unchanged; with
skip_invalid the other files and shapes are imported and the problems listed.

(LabelMe names categories by label and has no ids, so "unknown category id" and "duplicate id"
cannot occur in this format.)
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.annotations.errors import ImportFailed
from engine.annotations.formats import import_into
from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore

from .strategies import write_bomb_png, write_png


def _counts(store) -> tuple:
    return (store.count_images(), store.count_annotations(), len(store.categories()))


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "proj" / "p.vbproj")
    rec = s.add_image(write_png(tmp_path / "proj" / "old.png", 8, 8), 8, 8)
    s.add_annotation(Annotation(rec.id, s.add_category("old").id, Box(1, 1, 2, 2)))
    yield s
    s.close()


def _doc(image, w, h):
    return {"version": "5.5.0", "flags": {}, "imagePath": image, "imageData": None, "imageWidth": w,
            "imageHeight": h, "shapes": [
                {"label": "cat", "shape_type": "rectangle", "points": [[1, 1], [5, 5]], "group_id": None, "flags": {}},
                {"label": "dog", "shape_type": "polygon", "points": [[2, 2], [8, 2], [8, 6]], "group_id": None,
                 "flags": {}}]}


@pytest.fixture
def src(tmp_path) -> Path:
    folder = tmp_path / "lm"
    write_png(folder / "a.png", 20, 10)
    write_png(folder / "b.png", 16, 12)
    (folder / "a.json").write_text(json.dumps(_doc("a.png", 20, 10)))
    (folder / "b.json").write_text(json.dumps(_doc("b.png", 16, 12)))
    return folder


def _edit(src: Path, fn):
    def run(tmp_path):
        doc = json.loads((src / "b.json").read_text())
        fn(doc, tmp_path)
        (src / "b.json").write_text(json.dumps(doc))
    return run


def test_valid_folder_imports(store, src):
    report = import_into(store, "labelme", src)
    assert (report.images_added, report.annotations_added, report.categories_added) == (2, 4, 2)


def _outside(t: Path) -> str:
    write_png(t / "outside.png", 16, 12)
    return "../outside.png"


# (name, edit(doc, tmp_path) of b.json or None, raw edit(src, tmp_path), field, words, kept (images, annotations))
CASES = [
    ("malformed json", None, lambda s, t: (s / "b.json").write_text('{"shapes": [\n\n  {"label": }]}'),
     "json", "line 3", (1, 2)),
    ("non-utf8", None, lambda s, t: (s / "b.json").write_bytes(b'{"shapes": [], "imagePath": "b\xff.png"}'),
     "json", "UTF-8", (1, 2)),
    ("missing image", lambda d, t: d.update(imagePath="nope.png"), None, "imagePath", "not found", (1, 2)),
    ("unreadable image", None, lambda s, t: (s / "b.png").write_bytes(b"not a png"), "imagePath", "unreadable", (1, 2)),
    ("size disagrees", lambda d, t: d.update(imageWidth=17), None, "imagePath", "width", (1, 2)),
    ("outside the image", lambda d, t: d["shapes"][1].update(points=[[2, 2], [80, 2], [8, 6]]), None,
     "shapes[1].points", "outside", (2, 3)),
    ("dot-dot path", lambda d, t: d.update(imagePath=_outside(t)), None, "imagePath",
     "leaves the source folder", (1, 2)),
    ("absolute path", lambda d, t: d.update(imagePath=str(t / _outside(t)[3:])), None, "imagePath",
     "leaves the source folder", (1, 2)),
    ("decompression bomb", lambda d, t: d.update(imagePath="bomb.png"),
     lambda s, t: write_bomb_png(s / "bomb.png"), "imagePath", "decompression bomb", (1, 2)),
    ("unknown shape type", lambda d, t: d["shapes"][0].update(shape_type="cuboid"), None,
     "shapes[0].shape_type", "cuboid", (2, 3)),
    ("too few points", lambda d, t: d["shapes"][1].update(points=[[1, 1], [2, 2]]), None,
     "shapes[1].points", "at least 3", (2, 3)),
    ("non-numeric point", lambda d, t: d["shapes"][0].update(points=[[1, "a"], [2, 2]]), None,
     "shapes[0].points", "non-numeric", (2, 3)),
    ("bad imageData", lambda d, t: d.update(imagePath="gone.png", imageData="%%% not base64"), None,
     "imageData", "base64", (1, 2)),
    ("not a labelme file", lambda d, t: d.pop("shapes"), None, "shapes", "not a LabelMe file", (1, 2)),
]


@pytest.mark.parametrize("name, edit, raw, field, words, kept", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_then_skipped(store, src, tmp_path, name, edit, raw, field, words, kept):
    if edit:
        _edit(src, edit)(tmp_path)
    if raw:
        raw(src, tmp_path)
    before = _counts(store)
    with pytest.raises(ImportFailed) as err:
        import_into(store, "labelme", src)
    problems = [(p.file, p.field, p.message) for p in err.value.problems]
    assert any(f == str(src / "b.json") and fld == field and words in m for f, fld, m in problems), problems
    assert _counts(store) == before
    assert not (store.root / "imported_images").exists()

    report = import_into(store, "labelme", src, skip_invalid=True)
    assert (report.images_added, report.annotations_added) == kept
    assert len(report.skipped) == 1 and "b.json" in str(report.skipped[0]) and field in str(report.skipped[0])
