"""Bad COCO input: a clear error naming the file and the field, the project unchanged; with
skip_invalid the valid part is imported and the rest listed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.annotations.errors import BadInput, ImportFailed
from engine.annotations.formats import import_into
from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore

from .strategies import write_bomb_png, write_png


def _counts(store) -> tuple:
    return (store.count_images(), store.count_annotations(), len(store.categories()))


@pytest.fixture
def store(tmp_path):
    """A project that already holds one image, one category and one annotation."""
    s = ProjectStore.create(tmp_path / "proj" / "p.vbproj")
    rec = s.add_image(write_png(tmp_path / "proj" / "old.png", 8, 8), 8, 8)
    cat = s.add_category("old")
    s.add_annotation(Annotation(rec.id, cat.id, Box(1, 1, 2, 2)))
    yield s
    s.close()


@pytest.fixture
def src(tmp_path) -> Path:
    folder = tmp_path / "coco"
    write_png(folder / "img_0.png", 20, 10)
    write_png(folder / "img_1.png", 16, 12)
    doc = {
        "images": [{"id": 1, "file_name": "img_0.png", "width": 20, "height": 10},
                   {"id": 2, "file_name": "img_1.png", "width": 16, "height": 12}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": [[2, 2, 8, 2, 8, 6]], "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [2, 2, 4, 4], "iscrowd": 0}],
    }
    (folder / "annotations.json").write_text(json.dumps(doc))
    return folder / "annotations.json"


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_valid_file_imports(store, src):
    report = import_into(store, "coco", src)
    assert (report.images_added, report.annotations_added, report.categories_added) == (2, 3, 2)


def _set(path, value):
    def fn(doc):
        obj = doc
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return fn


def _outside(tmp_path, src):
    write_png(tmp_path / "outside.png", 20, 10)
    return "../outside.png"


# (name, edit(doc, tmp_path, src), field the problem names, words in the message,
#  (images, annotations) kept by skip_invalid)
CASES = [
    ("missing image", lambda d, t, s: d["images"][0].update(file_name="nope.png"),
     "images[0].file_name", "not found", (1, 1)),
    ("unreadable image", lambda d, t, s: (s.parent / "img_0.png").write_bytes(b"\x89PNG garbage"),
     "images[0]", "unreadable", (1, 1)),
    ("size disagrees", lambda d, t, s: d["images"][0].update(width=21),
     "images[0]", "width", (1, 1)),
    ("unknown category", lambda d, t, s: d["annotations"][0].update(category_id=99),
     "annotations[0].category_id", "unknown category id 99", (2, 2)),
    ("outside the image", lambda d, t, s: d["annotations"][2].update(bbox=[10, 2, 9, 4]),
     "annotations[2].bbox", "outside", (2, 2)),
    ("polygon outside", lambda d, t, s: d["annotations"][1].update(segmentation=[[2, 2, 38, 2, 8, 6]]),
     "annotations[1].segmentation[0]", "outside", (2, 2)),
    ("duplicate annotation id", lambda d, t, s: d["annotations"][1].update(id=1),
     "annotations[0].id", "duplicate annotation id 1", (2, 1)),
    ("duplicate image id", lambda d, t, s: d["images"][1].update(id=1),
     "images[1].id", "duplicate image id 1", (0, 0)),
    ("dot-dot path", lambda d, t, s: d["images"][0].update(file_name=_outside(t, s)),
     "images[0].file_name", "leaves the source folder", (1, 1)),
    ("absolute path", lambda d, t, s: d["images"][0].update(file_name=str(t / _outside(t, s)[3:])),
     "images[0].file_name", "leaves the source folder", (1, 1)),
    ("decompression bomb", lambda d, t, s: (write_bomb_png(s.parent / "bomb.png"),
                                            d["images"][0].update(file_name="bomb.png")),
     "images[0]", "decompression bomb", (1, 1)),
    ("bad RLE size", lambda d, t, s: d["annotations"][1].update(segmentation={"size": [5, 5], "counts": [25]}),
     "annotations[1].segmentation.size", "differs from the image size", (2, 2)),
]


@pytest.mark.parametrize("name, edit, field, words, kept", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_then_skipped(store, src, tmp_path, name, edit, field, words, kept):
    _edit(src, lambda d: edit(d, tmp_path, src))
    before = _counts(store)
    with pytest.raises(ImportFailed) as err:
        import_into(store, "coco", src)
    fields = [(p.field, p.message, p.file) for p in err.value.problems]
    assert any(f == field and words in m and f_ == str(src) for f, m, f_ in fields), fields
    assert str(src) in str(err.value) and field in str(err.value)
    assert _counts(store) == before

    report = import_into(store, "coco", src, skip_invalid=True)
    assert (report.images_added, report.annotations_added) == kept
    assert any(field in s and words in s for s in report.as_dict()["skipped"])
    assert _counts(store)[:2] == (before[0] + kept[0], before[1] + kept[1])


def test_malformed_json_names_the_line(store, src):
    src.write_text('{"images": [\n  {"id": 1,}\n], "annotations": []}')
    before = _counts(store)
    with pytest.raises(BadInput) as err:
        import_into(store, "coco", src, skip_invalid=True)
    p = err.value.problem
    assert (p.file, p.field, p.line) == (str(src), "json", 2)
    assert "line 2" in str(err.value)
    assert _counts(store) == before


def test_non_utf8_text_is_rejected(store, src):
    src.write_bytes(b'{"images": [], "categories": [{"id": 1, "name": "caf\xe9"}], "annotations": []}')
    before = _counts(store)
    with pytest.raises(BadInput) as err:
        import_into(store, "coco", src)
    assert err.value.problem.file == str(src) and "UTF-8" in err.value.problem.message
    assert _counts(store) == before


def test_unknown_format_names_the_field(store, src):
    with pytest.raises(BadInput) as err:
        import_into(store, "cocoa", src)
    assert err.value.problem.field == "format" and "coco" in err.value.problem.message


def test_wrong_types_are_problems_not_crashes(store, src):
    def fn(d):
        d["annotations"][0]["image_id"] = [1]
        d["annotations"][1]["category_id"] = {"id": 2}
        d["annotations"][2]["bbox"] = ["2", 2, 4, 4]
        d["images"].append({"id": "3", "file_name": "img_1.png"})
        d["categories"].append({"id": 9, "name": ""})
    _edit(src, fn)
    with pytest.raises(ImportFailed) as err:
        import_into(store, "coco", src)
    fields = sorted(p.field for p in err.value.problems)
    assert fields == ["annotations[0].image_id", "annotations[1].category_id", "annotations[2].bbox",
                      "categories[2].name", "images[2].id"]
