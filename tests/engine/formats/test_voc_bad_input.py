"""Pascal VOC bad input: each problem names the file and the field (and the line), and a failed
import leaves the project as it was; skip_invalid imports the rest and lists what it left out."""
import struct
import zlib
from pathlib import Path

import pytest

from engine.annotations.bundle import import_bundle
from engine.annotations.errors import BadInput, ImportFailed
from engine.annotations.formats import voc
from engine.annotations.store import ProjectStore
from tests.engine.formats.strategies import write_png


def xml(filename="a.png", w=20, h=10, box=(1, 2, 8, 9), name="cat", extra="") -> str:
    return f"""<annotation>
  <filename>{filename}</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  <object>
    <name>{name}</name>
    <bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>
  </object>{extra}
</annotation>
"""


def make_voc(root: Path, files: dict[str, str | bytes], images=("a.png",)) -> Path:
    """A VOC folder: Annotations/<stem>.xml from `files`, 20x10 PNGs in JPEGImages/."""
    (root / "Annotations").mkdir(parents=True)
    for name in images:
        write_png(root / "JPEGImages" / name, 20, 10)
    for stem, text in files.items():
        data = text if isinstance(text, bytes) else text.encode()
        (root / "Annotations" / f"{stem}.xml").write_bytes(data)
    return root


def only_problem(src: Path, **kw):
    bundle = voc.read(src, **kw)
    assert len(bundle.problems) == 1, bundle.problems
    return bundle.problems[0]


def huge_png(path: Path, w: int, h: int) -> Path:
    """A PNG header claiming w x h pixels (a decompression bomb as far as a reader can tell)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_malformed_xml_names_file_and_line(tmp_path):
    src = make_voc(tmp_path, {"a": xml().replace("</object>", "</objet>")})
    p = only_problem(src)
    assert p.file.endswith("a.xml") and p.field == "xml"
    assert p.line == 7 and "line 7" in p.message


def test_doctype_and_entities_are_refused(tmp_path):
    bomb = '<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x "xxxxxxxx">]>\n' + xml().replace("cat", "&x;")
    p = only_problem(make_voc(tmp_path, {"a": bomb}))
    assert p.field == "xml" and "DOCTYPE" in p.message


def test_non_numeric_coordinate_names_the_field_and_line(tmp_path):
    p = only_problem(make_voc(tmp_path, {"a": xml(box=(1, "two", 8, 9))}))
    assert p.field == "object[0].bndbox.ymin" and p.line == 6


def test_missing_image(tmp_path):
    p = only_problem(make_voc(tmp_path, {"a": xml(filename="nothere.jpg")}))
    assert p.field == "filename" and "nothere.jpg" in p.message and "not found" in p.message


def test_unreadable_image(tmp_path):
    src = make_voc(tmp_path, {"a": xml(filename="broken.jpg")})
    (src / "JPEGImages" / "broken.jpg").write_bytes(b"this is not a jpeg")
    p = only_problem(src)
    assert p.field == "filename" and "broken.jpg" in p.message and "unreadable" in p.message


def test_decompression_bomb_image(tmp_path):
    src = make_voc(tmp_path, {"a": xml(filename="bomb.png", w=50000, h=50000)})
    huge_png(src / "JPEGImages" / "bomb.png", 50000, 50000)
    p = only_problem(src)
    assert p.field == "filename" and "bomb.png" in p.message and "decompression bomb" in p.message


def test_size_disagreeing_with_the_image(tmp_path):
    p = only_problem(make_voc(tmp_path, {"a": xml(w=21)}))
    assert p.file.endswith("a.xml") and p.field == "size.width" and p.line == 3
    assert "21" in p.message and "20 px" in p.message


def test_missing_or_zero_size_is_taken_from_the_image(tmp_path):
    bundle = voc.read(make_voc(tmp_path, {"a": xml(w=0, h=0)}))
    assert bundle.problems == [] and (bundle.images[0].width, bundle.images[0].height) == (20, 10)


@pytest.mark.parametrize("box", [(1, 2, 30, 9), (-5, 2, 8, 9), (1, 2, 8, 12)])
def test_coordinates_outside_the_image(tmp_path, box):
    p = only_problem(make_voc(tmp_path, {"a": xml(box=box)}))
    assert p.field == "object[0].bndbox" and "outside the 20x10 image" in p.message and p.line == 6


def test_empty_box(tmp_path):
    p = only_problem(make_voc(tmp_path, {"a": xml(box=(8, 2, 8, 9))}))
    assert p.field == "object[0].bndbox" and "empty box" in p.message


def test_coordinates_a_hair_outside_are_clipped(tmp_path):
    bundle = voc.read(make_voc(tmp_path, {"a": xml(box=(-0.4, 0, 20.3, 10))}))
    assert bundle.problems == []
    g = bundle.images[0].annotations[0].geometry
    assert (g.x1, g.x2) == (0.0, 20.0)


@pytest.mark.parametrize("filename", ["../../a.png", "../../../etc/passwd", "/etc/passwd", "..\\..\\a.png"])
def test_filename_escaping_the_source_folder_is_refused(tmp_path, filename):
    write_png(tmp_path / "a.png", 20, 10)  # exists, but outside SRC
    src = make_voc(tmp_path / "src", {"a": xml(filename=filename)})
    p = only_problem(src)
    assert p.field == "filename" and "leaves the source folder" in p.message


def test_filename_relative_to_jpegimages_may_climb_inside_the_source_folder(tmp_path):
    src = make_voc(tmp_path, {"a": xml(filename="../b.png")}, images=())
    write_png(src / "b.png", 20, 10)
    bundle = voc.read(src)
    assert bundle.problems == [] and bundle.images[0].file == (src / "b.png").resolve()


def test_non_utf8_text(tmp_path):
    data = xml(name="caf\xe9").encode("latin-1")
    p = only_problem(make_voc(tmp_path, {"a": data}))
    assert p.field == "encoding" and p.line == 5 and "UTF-8" in p.message


def test_declared_latin1_encoding_is_honoured(tmp_path):
    data = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n' + xml(name="caf\xe9")).encode("latin-1")
    bundle = voc.read(make_voc(tmp_path, {"a": data}))
    assert bundle.problems == [] and [c.name for c in bundle.categories] == ["café"]


def test_missing_name_and_bndbox(tmp_path):
    text = xml(name="").replace("</annotation>", "<object><name>dog</name></object>\n</annotation>")
    problems = voc.read(make_voc(tmp_path, {"a": text})).problems
    assert [(p.field, p.line) for p in problems] == [("object[0].name", 4), ("object[1].bndbox", 8)]


def test_not_a_voc_folder(tmp_path):
    with pytest.raises(BadInput, match="no .xml files"):
        voc.read(tmp_path)
    with pytest.raises(BadInput, match="not a folder"):
        voc.read(tmp_path / "nope")


def _counts(store) -> tuple[int, int, int]:
    return store.count_images(), store.count_annotations(), len(store.categories())


def test_failed_import_leaves_the_project_unchanged_and_skip_invalid_imports_the_rest(tmp_path):
    files = {"good": xml(filename="good.png", name="cat"),
             "badbox": xml(filename="a.png", box=(1, 2, 99, 9), name="dog").replace(
                 "</annotation>", "<object><name>cat</name><bndbox><xmin>0</xmin><ymin>0</ymin>"
                                  "<xmax>5</xmax><ymax>5</ymax></bndbox></object>\n</annotation>"),
             "noimage": xml(filename="gone.png"),
             "broken": "<annotation><filename>a.png</filename>"}
    src = make_voc(tmp_path / "src", files, images=("a.png", "good.png"))
    store = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    try:
        store.add_category("existing")
        before = _counts(store)
        with pytest.raises(ImportFailed) as err:
            import_bundle(store, voc.read(src))
        assert len(err.value.problems) == 3
        assert {(Path(p.file).name, p.field) for p in err.value.problems} == {
            ("badbox.xml", "object[0].bndbox"), ("noimage.xml", "filename"), ("broken.xml", "xml")}
        assert _counts(store) == before

        bundle = voc.read(src, skip_invalid=True)
        report = import_bundle(store, bundle, skip_invalid=True)
        # good.png with its cat, a.png with its one valid cat; the dog's box was left out
        assert report.images_added == 2 and report.annotations_added == 2
        assert len(report.skipped) == 3 and any("badbox.xml" in s for s in report.as_dict()["skipped"])
        assert _counts(store) == (2, 2, before[2] + 1)  # cat; no 'dog' category from the object left out
    finally:
        store.close()
