"""Issue 14, through the command line a user types: each numbered defect of the adversarial test,
reproduced as it was reported, then what must happen instead.

Projects are small (a.png 20x10, b.png 16x12); every failure is checked for exit code 2, a message
naming the file and the field (or the path and the cause), and an unchanged project.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.annotations import Annotation, BadInput, Box, Polygon, ProjectStore
from engine.annotations.formats import export_from, import_into
from tests.engine.formats.strategies import ImageSpec, build_project, write_png

FORMATS = ("coco", "voc", "yolo", "labelme", "masks")
OBJECTS = ((0, Box(1, 1, 6, 5), None), (1, Polygon(((8, 2), (14, 2), (11, 8))), None))
SPEC = [ImageSpec("a.png", 20, 10, "train", OBJECTS), ImageSpec("b.png", 16, 12, "val", OBJECTS)]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def fingerprint(folder: Path) -> dict[str, str]:
    """relative path -> sha1 of every file below `folder` (to prove nothing changed); SQLite's
    -wal/-shm files, which a reader may leave beside a project, are not content."""
    return {p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def labelme_folder(folder: Path, shapes_b: list[dict]) -> Path:
    write_png(folder / "a.png", 20, 10)
    write_png(folder / "b.png", 16, 12, seed=1)
    for name, w, h, shapes in (("a", 20, 10, [{"label": "cat", "shape_type": "rectangle",
                                                "points": [[1, 1], [5, 5]]}]), ("b", 16, 12, shapes_b)):
        (folder / f"{name}.json").write_text(json.dumps({
            "version": "5.5.0", "flags": {}, "imagePath": f"{name}.png", "imageData": None,
            "imageWidth": w, "imageHeight": h, "shapes": shapes}))
    return folder


# ---- 1. non-finite and out-of-image numbers -------------------------------------------------------

def test_a_circle_reaching_1e308_is_refused_and_every_export_keeps_working(tmp_path, capsys):
    src = labelme_folder(tmp_path / "lm", [{"label": "dog", "shape_type": "circle",
                                            "points": [[5, 5], [1.7e308, 1.7e308]]}])
    project = tmp_path / "p" / "p.vbproj"
    code, _, err = run(capsys, "import", "labelme", src, "--project", project)
    assert code == 2 and "b.json" in err and "shapes[0].points" in err
    assert not project.exists()  # a failed first import leaves no project behind

    code, _, err = run(capsys, "import", "labelme", src, "--project", project, "--skip-invalid")
    assert code == 0, err
    with ProjectStore(project, readonly=True) as store:
        for anns in store.all_annotations().values():
            for a in anns:
                assert "null" not in json.dumps(a.geometry.to_json())
    for fmt in FORMATS:
        code, _, err = run(capsys, "export", fmt, tmp_path / f"out_{fmt}", "--project", project)
        assert code == 0, (fmt, err)


def test_a_circle_inside_but_overflowing_the_image_is_refused_by_its_polygon(tmp_path, capsys):
    # the centre is inside; the 64-gon stored for it is not
    src = labelme_folder(tmp_path / "lm", [{"label": "dog", "shape_type": "circle", "points": [[8, 6], [8, 40]]}])
    code, _, err = run(capsys, "import", "labelme", src, "--project", tmp_path / "p.vbproj")
    assert code == 2 and "b.json" in err and "shapes[0].points" in err and "circle" in err


def test_the_store_itself_refuses_a_non_finite_coordinate(tmp_path):
    with ProjectStore.create(tmp_path / "p.vbproj") as store:
        rec = store.add_image(write_png(tmp_path / "a.png", 20, 10))
        cat = store.add_category("cat")
        for bad in (Box(0, 0, float("inf"), 5), Polygon(((0, 0), (float("nan"), 1), (3, 3)))):
            with pytest.raises(ValueError, match="non-finite"):
                store.add_annotation(Annotation(rec.id, cat.id, bad))
        assert store.count_annotations() == 0


# ---- 2. names that change in a round trip ---------------------------------------------------------

@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hardening_exports")
    store = build_project(root / "project", SPEC)
    try:
        return {fmt: (export_from(store, fmt, root / fmt), root / fmt)[1] for fmt in FORMATS}
    finally:
        store.close()


def copy_of(exports: dict, fmt: str, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(exports[fmt], tmp_path / fmt))


def test_a_category_name_with_a_line_break_is_refused_instead_of_turning_dogs_into_kittens(exports, tmp_path,
                                                                                            capsys):
    src = copy_of(exports, "coco", tmp_path)
    doc = json.loads((src / "annotations.json").read_text())
    doc["categories"][0]["name"] = "tabby\nkitten"
    (src / "annotations.json").write_text(json.dumps(doc))
    code, _, err = run(capsys, "import", "coco", src, "--project", tmp_path / "p.vbproj")
    assert code == 2 and "annotations.json" in err and "categories[0].name" in err and "U+000A" in err


@pytest.mark.parametrize("fmt,edit,named", [
    ("labelme", lambda s: s.joinpath("images", "a.json").write_text(
        s.joinpath("images", "a.json").read_text().replace('"cat"', '"c\\u0000at"', 1)), "shapes[0].label"),
    ("voc", lambda s: (s.joinpath("Annotations", "a.xml").write_text(
        s.joinpath("Annotations", "a.xml").read_text().replace("<name>cat", "<name>c\tat", 1)),
        s.joinpath("class_names.txt").write_text("c\tat\ndog\ntraffic light\n")), "object[0].name"),
    ("yolo", lambda s: s.joinpath("data.yaml").write_text(
        s.joinpath("data.yaml").read_text().replace('"cat"', '"c\\u0085at"')), "names[0]"),
    ("masks", lambda s: s.joinpath("class_names.txt").write_text("_background_\ncat\u2028x\ndog\ntraffic light\n"),
     "class_names.txt"),
])
def test_control_characters_in_names_are_refused_by_every_format(exports, tmp_path, capsys, fmt, edit, named):
    src = copy_of(exports, fmt, tmp_path)
    edit(src)
    code, _, err = run(capsys, "import", fmt, src, "--project", tmp_path / "p.vbproj")
    assert code == 2 and named in err and "internal error" not in err, err


def test_attribute_text_with_a_nul_is_refused_and_line_breaks_survive_voc(tmp_path, capsys):
    src = labelme_folder(tmp_path / "lm", [{"label": "dog", "shape_type": "rectangle", "points": [[1, 1], [5, 5]],
                                            "attributes": {"note": "a\u0000b"}}])
    code, _, err = run(capsys, "import", "labelme", src, "--project", tmp_path / "p.vbproj")
    assert code == 2 and "shapes[0].attributes" in err

    src = labelme_folder(tmp_path / "lm2", [{"label": "dog", "shape_type": "rectangle", "points": [[1, 1], [5, 5]],
                                             "attributes": {"note": "two\r\nlines"}}])
    assert run(capsys, "import", "labelme", src, "--project", tmp_path / "q.vbproj")[0] == 0
    assert run(capsys, "export", "voc", tmp_path / "voc", "--project", tmp_path / "q.vbproj")[0] == 0
    assert run(capsys, "import", "voc", tmp_path / "voc", "--project", tmp_path / "r.vbproj")[0] == 0
    with ProjectStore(tmp_path / "r.vbproj", readonly=True) as store:
        notes = [a.attributes.get("note") for anns in store.all_annotations().values() for a in anns]
    assert "two\nlines" in notes


# ---- 3. exports that overwrite files ----------------------------------------------------------------

@pytest.fixture
def photos(tmp_path) -> Path:
    """A project whose images live in images/photos/ under its own folder."""
    folder = tmp_path / "work"
    store = build_project(folder, SPEC, image_dir="images/photos")
    store.close()
    return folder


def test_export_into_the_project_folder_is_refused_and_images_stay_intact(photos, capsys, monkeypatch):
    before = fingerprint(photos)
    monkeypatch.chdir(photos)
    for fmt in FORMATS:
        code, _, err = run(capsys, "export", fmt, ".", "--project", "project.vbproj")
        assert code == 2 and "holds the project" in err, (fmt, err)
        code, _, err = run(capsys, "export", fmt, "images", "--project", "project.vbproj", "--overwrite")
        assert code == 2 and "images/photos/a.png" in err, (fmt, err)
    assert fingerprint(photos) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_non_empty_folder_needs_overwrite_which_replaces_only_what_the_export_writes(photos, tmp_path, capsys,
                                                                                        fmt):
    out = tmp_path / "out"
    assert run(capsys, "export", fmt, out, "--project", photos / "project.vbproj")[0] == 0
    written = fingerprint(out)
    for rel in written:  # a user's files of the same names, and one of their own
        (out / rel).write_bytes(b"the user's file")
    (out / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "export", fmt, out, "--project", photos / "project.vbproj")
    assert code == 2 and "not empty" in err and "--overwrite" in err
    assert all((out / rel).read_bytes() == b"the user's file" for rel in written)

    code, _, err = run(capsys, "export", fmt, out, "--project", photos / "project.vbproj", "--overwrite")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    now = fingerprint(out)
    assert {rel: now[rel] for rel in written} == written
    assert not [p for p in out.parent.iterdir() if ".export-" in p.name]  # no staging folder left


def test_a_failed_export_leaves_no_half_folder(photos, tmp_path, capsys, monkeypatch):
    import engine.annotations.formats.common as common

    real_copy, calls = common.shutil.copyfile, []

    def full_disk_on_second_image(src, dst, *args, **kwargs):
        calls.append(src)
        if len(calls) == 2:  # shutil reports the image being read as the file: the message must not
            raise OSError(28, "No space left on device", str(src))
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(common.shutil, "copyfile", full_disk_on_second_image)
    code, _, err = run(capsys, "export", "coco", tmp_path / "out", "--project", photos / "project.vbproj")
    assert code == 2 and "disk is full" in err and str(tmp_path / "out") in err and "b.png" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no out/, no staging folder


def test_yolo_data_yaml_names_the_destination_not_the_staging_folder(photos, tmp_path, capsys):
    import yaml

    assert run(capsys, "export", "yolo", tmp_path / "y", "--project", photos / "project.vbproj")[0] == 0
    assert Path(yaml.safe_load((tmp_path / "y" / "data.yaml").read_text())["path"]) == (tmp_path / "y").resolve()


# ---- 4. creating a project: atomic, and a loser deletes nothing ---------------------------------------

def test_a_failed_import_into_an_existing_project_deletes_nothing(exports, tmp_path, capsys):
    project = tmp_path / "p.vbproj"
    assert run(capsys, "import", "coco", exports["coco"], "--project", project)[0] == 0
    bad = copy_of(exports, "coco", tmp_path)
    (bad / "annotations.json").write_text("{")
    before = sqlite3.connect(project).execute("SELECT count(*) FROM annotations").fetchone()[0]
    assert run(capsys, "import", "coco", bad, "--project", project)[0] == 2
    assert project.exists() and Path(f"{project}.lock").exists()
    with ProjectStore(project, readonly=True) as store:
        assert store.count_annotations() == before


def test_a_locked_new_project_is_not_deleted_by_the_process_that_lost(exports, tmp_path, capsys):
    project = tmp_path / "new" / "p.vbproj"
    winner = ProjectStore.create(project)  # holds the lock, as a running import would
    try:
        assert winner.created
        code, _, err = run(capsys, "import", "coco", exports["coco"], "--project", project)
        assert code == 2 and "open for writing in another Visionbench process" in err
        assert project.exists() and Path(f"{project}.lock").exists()
        winner.add_category("still mine")  # the winner's file and lock are intact
    finally:
        winner.close()


def test_creation_leaves_no_temporary_file_and_discard_removes_only_its_own(tmp_path):
    store = ProjectStore.create(tmp_path / "a" / "b" / "p.vbproj")
    assert store.created and not [n for n in os.listdir(tmp_path / "a" / "b") if "creating" in n]
    store.discard()
    assert not (tmp_path / "a").exists()  # the folders it made, too
    keep = ProjectStore.create(tmp_path / "k.vbproj")
    keep.close()
    again = ProjectStore(tmp_path / "k.vbproj", create=True)
    assert not again.created
    again.discard()  # not its own: only closed
    assert (tmp_path / "k.vbproj").exists()



# ---- 6. malformed input that was an internal error ----------------------------------------------------

def _coco(exports, tmp_path, fn) -> Path:
    src = copy_of(exports, "coco", tmp_path)
    doc = json.loads((src / "annotations.json").read_text())
    fn(doc)
    (src / "annotations.json").write_text(json.dumps(doc))
    return src


def _nested(depth: int):
    value: object = "deep"
    for _ in range(depth):
        value = {"x": value}
    return value


MALFORMED = [
    ("coco", lambda e, t: _coco(e, t, lambda d: d["annotations"][0].update(instance_id=2 ** 63)),
     "annotations.json", "annotations[0].instance_id", 1),
    ("coco", lambda e, t: _coco(e, t, lambda d: d["annotations"][0].update(attributes=_nested(400))),
     "annotations.json", "annotations[0].attributes", 1),
    ("coco", lambda e, t: _coco(e, t, lambda d: d["images"][1].update(file_name="x" * 5000 + ".png")),
     "annotations.json", "images[1].file_name", 1),
    ("labelme", lambda e, t: labelme_folder(t / "lm", [{"label": "dog", "shape_type": "point", "points": [[1, 1]],
                                                       "group_id": 2 ** 63}]), "b.json", "shapes[0].group_id", 1),
    ("voc", lambda e, t: _edit_text(copy_of(e, "voc", t), "Annotations/b.xml", "<annotation>",
                                    '<?xml version="1.0" encoding="klingon"?><annotation>'), "b.xml", "encoding", 1),
    ("yolo", lambda e, t: _edit_text(copy_of(e, "yolo", t), "data.yaml", "train: images/train", "train: [1, 2]"),
     "data.yaml", "train[0]", None),
    ("yolo", lambda e, t: _edit_text(copy_of(e, "yolo", t), "data.yaml", "train: images/train", "train: [null]"),
     "data.yaml", "train[0]", None),
    ("yolo", lambda e, t: _edit_text(copy_of(e, "yolo", t), "data.yaml", "train: images/train",
                                     'train: "images/\\0train"'), "data.yaml", "train", None),
    ("masks", lambda e, t: _gray_alpha(copy_of(e, "masks", t)), "b.png", "mode", 1),
]


def _edit_text(src: Path, rel: str, old: str, new: str) -> Path:
    f = src / rel
    text = f.read_text()
    assert old in text, (rel, old)
    f.write_text(text.replace(old, new, 1))
    return src


def _gray_alpha(src: Path) -> Path:
    from PIL import Image

    png = src / "SegmentationClass" / "images" / "b.png"
    with Image.open(png) as im:
        index = np.asarray(im)
    Image.fromarray(np.stack([index, np.full_like(index, 255)], axis=-1), mode="LA").save(png)
    return src


@pytest.mark.parametrize("fmt,make,file,field,images_kept", MALFORMED,
                         ids=[f"{c[0]}-{c[3]}" for c in MALFORMED])
def test_malformed_input_is_exit_2_naming_file_and_field_and_skip_invalid_skips_it(exports, tmp_path, capsys, fmt,
                                                                                   make, file, field, images_kept):
    src = make(exports, tmp_path)
    project = tmp_path / "p.vbproj"
    code, _, err = run(capsys, "import", fmt, src, "--project", project)
    assert code == 2 and file in err and field in err and "internal error" not in err, err
    code, out, err = run(capsys, "import", fmt, src, "--project", project, "--skip-invalid")
    if images_kept is None:  # nothing in SRC can be read without its data.yaml
        assert code == 2 and "internal error" not in err and not project.exists()
    else:
        assert code == 0, err
        assert json.loads(out)["images_added"] >= images_kept and field in out


def test_a_fifo_named_like_an_annotation_file_is_not_read(exports, tmp_path, capsys):
    src = copy_of(exports, "voc", tmp_path)
    os.mkfifo(src / "Annotations" / "x.xml")
    code, out, err = run(capsys, "import", "voc", src, "--project", tmp_path / "p.vbproj")  # would block forever
    assert code == 0, err
    assert json.loads(out)["images_added"] == 2


def test_a_truncated_rle_is_refused(exports, tmp_path, capsys):
    from engine.annotations.geometry import encode_mask

    m = np.zeros((12, 16), np.uint8)
    m[2:5, 3:9] = 1
    full = encode_mask(m).counts
    src = _coco(exports, tmp_path, lambda d: d["annotations"][-1].update(
        segmentation={"size": [12, 16], "counts": full[:-1]}, bbox=[3, 2, 6, 3]))
    code, _, err = run(capsys, "import", "coco", src, "--project", tmp_path / "p.vbproj")
    assert code == 2 and "segmentation.counts" in err and "cover" in err


# ---- 7. symlinks out of the source folder ----------------------------------------------------------

@pytest.mark.parametrize("fmt,image_rel", [("yolo", "images/val/b.png"), ("masks", "JPEGImages/images/b.png")])
def test_yolo_and_masks_refuse_an_image_symlinked_from_outside(exports, tmp_path, capsys, fmt, image_rel):
    src = copy_of(exports, fmt, tmp_path)
    outside = write_png(tmp_path / "elsewhere" / "secret.png", 16, 12, seed=1)
    (src / image_rel).unlink()
    (src / image_rel).symlink_to(outside)
    code, _, err = run(capsys, "import", fmt, src, "--project", tmp_path / "p.vbproj")
    assert code == 2 and "b.png" in err and "symlink out of the source folder" in err
    code, out, err = run(capsys, "import", fmt, src, "--project", tmp_path / "p.vbproj", "--skip-invalid")
    assert code == 0 and json.loads(out)["images_added"] == 1


# ---- 8. the environment: full disk, read-only, locked -------------------------------------------------

def test_a_full_disk_during_import_says_so_and_keeps_the_project(exports, tmp_path):
    def many(doc):  # enough rows to need new pages
        doc["annotations"] = [dict(a, id=k * 10 + i + 1) for k in range(300) for i, a in enumerate(doc["annotations"])]

    src = _coco(exports, tmp_path, many)
    project = tmp_path / "p.vbproj"
    with ProjectStore.create(project) as store:
        store.add_category("old")
    with ProjectStore(project) as store:
        pages = store.execute("PRAGMA page_count").fetchone()[0]
        store.execute(f"PRAGMA max_page_count={pages + 1}")  # SQLite's "database or disk is full", for real
        with pytest.raises(BadInput, match="disk is full") as info:
            import_into(store, "coco", src)
        assert "no transaction is active" not in str(info.value) and str(project) in str(info.value)
        assert (store.count_images(), [c.name for c in store.categories()]) == (0, ["old"])


def test_another_program_holding_the_database_lock_is_named(exports, tmp_path, capsys, monkeypatch):
    import engine.annotations.store as store_module

    project = tmp_path / "p.vbproj"
    ProjectStore.create(project).close()
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)
    other = sqlite3.connect(project, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        code, _, err = run(capsys, "import", "coco", exports["coco"], "--project", project)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert code == 2 and str(project) in err and "locked by another program" in err
    with ProjectStore(project, readonly=True) as store:
        assert store.count_images() == 0


def _unprivileged(argv: list[str], cwd: Path):
    """Run the CLI bound by file modes (root, unless it gives up CAP_DAC_OVERRIDE, ignores them)."""
    import subprocess
    import sys

    prefix = []
    if os.geteuid() == 0:
        import shutil

        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: file modes cannot make anything read-only")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo), HOME=str(cwd))
    return subprocess.run(prefix + [sys.executable, "-m", "engine.cli", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_read_only_project_and_folder(photos, tmp_path, exports):
    project = photos / "project.vbproj"
    project.chmod(0o444)
    res = _unprivileged(["import", "coco", exports["coco"], "--project", project], tmp_path)
    assert res.returncode == 2 and "read-only" in res.stderr and "internal error" not in res.stderr, res.stderr
    for leftover in photos.glob("project.vbproj-*"):
        leftover.unlink()
    photos.chmod(0o555)  # a read-only folder: reading must still work
    try:
        res = _unprivileged(["info", "--project", project], tmp_path)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["annotations"] == 4
        res = _unprivileged(["export", "coco", tmp_path / "out", "--project", project], tmp_path)
        assert res.returncode == 0, res.stderr
        assert json.loads((tmp_path / "out" / "annotations.json").read_text())["annotations"]
    finally:
        photos.chmod(0o755)


# ---- 9. smaller defects -----------------------------------------------------------------------------

def test_reimporting_the_same_source_is_refused_instead_of_doubling_it(exports, tmp_path, capsys):
    project = tmp_path / "p.vbproj"
    assert run(capsys, "import", "yolo", exports["yolo"], "--project", project)[0] == 0
    code, _, err = run(capsys, "import", "yolo", exports["yolo"], "--project", project)
    assert code == 2 and "already imported" in err
    with ProjectStore(project, readonly=True) as store:
        assert store.count_annotations() == 4


def test_info_into_a_closed_pipe_exits_quietly(photos, tmp_path):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "info", "--project", photos / "project.vbproj"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=str(repo)))
    proc.stdout.close()  # as `| head -1` does once it has its line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0 and "Error" not in err and "internal error" not in err, err


def test_a_failed_import_with_embedded_image_data_leaves_no_empty_folder(tmp_path, capsys):
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (9, 6)).save(buf, format="PNG")
    src = tmp_path / "lm"
    src.mkdir()
    (src / "shot.json").write_text(json.dumps({
        "imagePath": "gone.png", "imageData": base64.b64encode(buf.getvalue()).decode(), "imageWidth": 9,
        "imageHeight": 6, "shapes": [{"label": "a", "shape_type": "polygon", "points": [[1, 1], [8, 1], [4, 5]]}]}))
    project = tmp_path / "proj" / "p.vbproj"
    ProjectStore.create(project).close()
    (src / "other.json").write_text("{")  # one bad file: the whole import fails
    assert run(capsys, "import", "labelme", src, "--project", project)[0] == 2
    assert not (project.parent / "imported_images").exists()


def test_voc_in_utf16_with_a_byte_order_mark_is_read(exports, tmp_path, capsys):
    code, out, err = run(capsys, "import", "voc", exports["voc"], "--project", tmp_path / "plain.vbproj")
    assert code == 0, err
    expected = json.loads(out)["annotations_added"]
    src = copy_of(exports, "voc", tmp_path)
    xml = src / "Annotations" / "a.xml"
    text = xml.read_text(encoding="utf-8")
    xml.write_bytes(('<?xml version="1.0" encoding="UTF-16"?>\n' + text).encode("utf-16"))  # BOM first
    code, out, err = run(capsys, "import", "voc", src, "--project", tmp_path / "p.vbproj")
    assert code == 0, err
    assert json.loads(out)["annotations_added"] == expected


@pytest.mark.parametrize("damage", ["truncated", "header only"])
def test_a_truncated_or_header_only_image_is_refused_at_import(exports, tmp_path, capsys, damage):
    from benchmarks.robustness import header_only_png

    src = copy_of(exports, "coco", tmp_path)
    b = next(src.rglob("b.png"))
    if damage == "truncated":
        b.write_bytes(b.read_bytes()[: b.stat().st_size // 2])
    else:
        header_only_png(b, 16, 12 * 1000)  # its header still promises the pixels
        doc = json.loads((src / "annotations.json").read_text())
        doc["images"][1]["height"] = 12000
        (src / "annotations.json").write_text(json.dumps(doc))
    code, _, err = run(capsys, "import", "coco", src, "--project", tmp_path / "p.vbproj")
    assert code == 2 and "b.png" in err and "damaged" in err, err
    code, out, err = run(capsys, "import", "coco", src, "--project", tmp_path / "p.vbproj", "--skip-invalid")
    assert code == 0 and json.loads(out)["images_added"] == 1
    for fmt in FORMATS:  # what was imported exports in every format
        assert run(capsys, "export", fmt, tmp_path / f"out_{fmt}", "--project", tmp_path / "p.vbproj")[0] == 0
