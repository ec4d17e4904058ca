"""YOLO bad input: each problem names the file, the field and the line; a failed import leaves
the project as it was; skip_invalid imports the rest and lists what it left out."""
import struct
import zlib
from pathlib import Path

import pytest

from engine.annotations.bundle import import_bundle
from engine.annotations.errors import BadInput, ImportFailed
from engine.annotations.formats import yolo
from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore
from tests.engine.formats.strategies import write_png


def make_yolo(root: Path, labels: dict[str, str | bytes], images=("a",), names=("cat", "dog")) -> Path:
    """images/train/<stem>.png (20x10) and labels/train/<stem>.txt, classes in data.yaml."""
    for stem in images:
        write_png(root / "images" / "train" / f"{stem}.png", 20, 10)
    (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
    for stem, text in labels.items():
        data = text if isinstance(text, bytes) else text.encode()
        (root / "labels" / "train" / f"{stem}.txt").write_bytes(data)
    if names is not None:
        (root / "data.yaml").write_text("train: images/train\nval: images/train\nnames: [%s]\n" % ", ".join(names))
    return root


def names_problem(src: Path):
    """Unreadable class names make the whole folder unusable: BadInput, even with skip_invalid."""
    for skip in (False, True):
        with pytest.raises(BadInput) as err:
            yolo.read(src, skip_invalid=skip)
    return err.value.problem


def only_problem(src: Path):
    bundle = yolo.read(src)
    assert len(bundle.problems) == 1, bundle.problems
    return bundle.problems[0]


def test_unknown_class_index(tmp_path):
    p = only_problem(make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n"}))
    assert p.file.endswith("a.txt") and p.field == "class" and p.line == 2
    assert "class index 2" in p.message and "2 classes" in p.message


@pytest.mark.parametrize("line", ["0 1.5 0.5 0.2 0.2", "0 0.5 0.5 1.2 0.2", "0 -0.3 0.5 0.2 0.2",
                                  "1 0.1 0.1 1.4 0.1 0.5 0.5"])
def test_normalized_values_outside_0_1(tmp_path, line):
    p = only_problem(make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n" + line + "\n"}))
    assert p.field == "coordinates" and p.line == 2 and "0..1" in p.message


@pytest.mark.parametrize("line,what", [("0 0.5 0.5 0.2", "got 4 values"), ("0 0.5 0.5 0.2 x", "non-numeric"),
                                       ("0 0.1 0.1 0.2 0.2 0.3 0.3 0.4", "got 8 values"),
                                       ("0 0.5 nan 0.2 0.2", "non-finite"), ("0 0.5 0.5 0 0.2", "> 0")])
def test_malformed_line_names_its_number(tmp_path, line, what):
    p = only_problem(make_yolo(tmp_path, {"a": "\n# a comment\n" + line + "\n"}))
    assert p.file.endswith("a.txt") and p.line == 3 and what in p.message


def test_class_index_must_be_a_non_negative_integer(tmp_path):
    p = only_problem(make_yolo(tmp_path, {"a": "1.5 0.5 0.5 0.2 0.2\n"}))
    assert p.field == "class" and p.line == 1


def test_coordinates_a_hair_outside_are_clipped(tmp_path):
    bundle = yolo.read(make_yolo(tmp_path, {"a": "0 0.5 0.5 1.00000003 1\n"}))
    assert bundle.problems == []
    g = bundle.images[0].annotations[0].geometry
    assert (g.x1, g.y1, g.x2, g.y2) == (0.0, 0.0, 20.0, 10.0)


def test_label_file_without_image(tmp_path):
    p = only_problem(make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n", "ghost": "0 0.5 0.5 0.2 0.2\n"}))
    assert p.file.endswith("ghost.txt") and p.field == "image" and "no image" in p.message


def test_unreadable_image(tmp_path):
    src = make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"})
    (src / "images" / "train" / "a.png").write_bytes(b"not a png at all")
    p = only_problem(src)
    assert p.file.endswith("a.png") and p.field == "image" and "unreadable" in p.message


def test_decompression_bomb_image(tmp_path):
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    src = make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"})
    (src / "images" / "train" / "a.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    p = only_problem(src)
    assert p.file.endswith("a.png") and p.field == "image" and "decompression bomb" in p.message


def test_non_utf8_label_file(tmp_path):
    p = only_problem(make_yolo(tmp_path, {"a": b"0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2 \xff\n"}))
    assert p.file.endswith("a.txt") and p.field == "encoding" and p.line == 2 and "UTF-8" in p.message


def test_non_utf8_classes_txt(tmp_path):
    src = make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"}, names=None)
    (src / "classes.txt").write_bytes(b"caf\xe9\n")
    p = names_problem(src)
    assert p.file.endswith("classes.txt") and p.field == "encoding"


def test_malformed_data_yaml_names_the_line(tmp_path):
    src = make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"}, names=None)
    (src / "data.yaml").write_text("train: images/train\nnames: [cat, dog\nval: x\n")
    p = names_problem(src)
    assert p.file.endswith("data.yaml") and p.field == "yaml" and p.line in (3, 4)


def test_bad_names_in_data_yaml(tmp_path):
    src = make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"}, names=None)
    (src / "data.yaml").write_text("names: {cat: 0}\n")
    p = names_problem(src)
    assert p.field == "names" and "not an integer" in p.message


def test_data_yaml_paths_out_of_the_folder_read_nothing_from_there(tmp_path):
    outside = tmp_path / "outside"
    write_png(outside / "images" / "secret.png", 20, 10)
    (outside / "labels").mkdir()
    (outside / "labels" / "secret.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    src = make_yolo(tmp_path / "src", {"a": "0 0.5 0.5 0.2 0.2\n"}, names=None)
    (src / "data.yaml").write_text(f"path: ..\ntrain: outside/images\nval: {outside / 'images'}\nnames: [cat]\n")
    bundle = yolo.read(src)
    assert bundle.problems == [] and [e.file.name for e in bundle.images] == ["a.png"]


def test_not_a_folder(tmp_path):
    with pytest.raises(BadInput, match="not a folder"):
        yolo.read(tmp_path / "missing")


def _counts(store) -> tuple[int, int, int]:
    return store.count_images(), store.count_annotations(), len(store.categories())


def test_failed_import_leaves_the_project_unchanged_and_skip_invalid_imports_the_rest(tmp_path):
    src = make_yolo(tmp_path / "src", {
        "a": "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.4 0.1 0.3 0.6\n",
        "b": "0 0.5 0.5 0.2\n",
        "c": b"\xff\xfe\n",
        "orphan": "0 0.5 0.5 0.2 0.2\n"}, images=("a", "b", "c"))
    store = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    try:
        img = store.add_image(write_png(tmp_path / "p" / "mine.png", 8, 8))
        store.add_annotation(Annotation(img.id, store.add_category("mine").id, Box(0, 0, 2, 2)))
        before = _counts(store)
        with pytest.raises(ImportFailed) as err:
            import_bundle(store, yolo.read(src))
        found = {(Path(p.file).name, p.field, p.line) for p in err.value.problems}
        assert found == {("a.txt", "class", 2), ("b.txt", "line", 1), ("c.txt", "encoding", 1),
                         ("orphan.txt", "image", None)}
        assert "(and 3 more problems)" in str(err.value)
        assert _counts(store) == before

        report = import_bundle(store, yolo.read(src, skip_invalid=True), skip_invalid=True)
        # a.png with its 2 valid lines, b.png with none left; c.png (unreadable labels) left out
        assert report.images_added == 2 and report.annotations_added == 2 and len(report.skipped) == 4
        assert _counts(store) == (before[0] + 2, before[1] + 2, before[2] + 2)
    finally:
        store.close()
