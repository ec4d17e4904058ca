"""The project store keeps its promises: all-or-nothing bulk work, honest folder reports, migrations,
read-only access, cascading deletes, and one writer at a time (across processes too)."""
import sqlite3
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.annotations import Annotation, BadInput, Box, ProjectLocked, ProjectStore
from engine.annotations.store import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[3]


def _png(path: Path, w=8, h=6):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)
    return path


def _bomb_png(path: Path, side=50_000):
    """A PNG whose header claims side x side pixels (the pixels are never there)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "p.vbproj")
    yield s
    s.close()


def test_failure_inside_a_transaction_leaves_nothing(store, tmp_path):
    cat = store.add_category("thing")
    with pytest.raises(RuntimeError):
        with store.transaction():
            img = store.add_image(_png(tmp_path / "a.png"))
            store.add_annotation(Annotation(img.id, cat.id, Box(0, 0, 2, 2)))
            store.add_category("other")
            raise RuntimeError("power cut in the middle of a bulk edit")
    assert store.count_images() == 0 and store.count_annotations() == 0
    assert [c.name for c in store.categories()] == ["thing"]


def test_bulk_insert_with_one_bad_row_inserts_none(store, tmp_path):
    cat = store.add_category("thing")
    img = store.add_image(_png(tmp_path / "a.png"))
    good = [Annotation(img.id, cat.id, Box(i, i, i + 1, i + 1)) for i in range(50)]
    bad = Annotation(img.id, 999, Box(0, 0, 1, 1))  # no such category: foreign key fails
    with pytest.raises(sqlite3.IntegrityError):
        store.bulk_insert_annotations(good[:25] + [bad] + good[25:])
    assert store.count_annotations() == 0
    assert store.bulk_insert_annotations(good) == 50 and store.count_annotations() == 50


def test_add_folder_recursive_reports_what_it_skipped_and_why(store, tmp_path):
    photos = tmp_path / "photos"
    _png(photos / "a.png", 8, 6)
    _png(photos / "deeper" / "b.png", 5, 4)
    (photos / "notes.txt").write_text("not an image")
    (photos / "broken.png").write_bytes(b"\x89PNG but not really")
    _bomb_png(photos / "bomb.png")
    store.add_image(photos / "a.png")
    report = store.add_folder(photos)
    assert [(r.path, r.width, r.height) for r in report.added] == [("photos/deeper/b.png", 5, 4)]
    reasons = {Path(p).name: why for p, why in report.skipped}
    assert set(reasons) == {"a.png", "notes.txt", "broken.png", "bomb.png"}
    assert "already in the project" in reasons["a.png"]
    assert "not an image" in reasons["notes.txt"]
    assert "unreadable" in reasons["broken.png"]
    assert "decompression bomb" in reasons["bomb.png"]
    flat = store.add_folder(photos, recursive=False)
    assert flat.added == [] and all("deeper" not in p for p, _ in flat.skipped)
    with pytest.raises(BadInput, match="not a folder"):
        store.add_folder(tmp_path / "missing")


def test_paths_are_relative_so_a_moved_project_still_finds_its_images(tmp_path):
    with ProjectStore.create(tmp_path / "proj" / "p.vbproj") as s:
        img = s.add_image(_png(tmp_path / "proj" / "img" / "x.png"))
        outside = s.add_image(_png(tmp_path / "elsewhere" / "y.png"))
    assert (img.path, outside.path) == ("img/x.png", "../elsewhere/y.png")
    (tmp_path / "proj").rename(tmp_path / "moved")
    with ProjectStore(tmp_path / "moved" / "p.vbproj") as s:
        assert s.image_path(s.image_by_path("img/x.png")) == (tmp_path / "moved" / "img" / "x.png").resolve()


def test_empty_v0_file_is_migrated_and_version_stored(tmp_path):
    path = tmp_path / "old.vbproj"
    sqlite3.connect(path).close()  # an empty SQLite database: schema version 0
    with ProjectStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        s.add_category("cat")
    with ProjectStore(path, readonly=True) as s:
        assert [c.name for c in s.categories()] == ["cat"]


def test_newer_schema_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "future.vbproj"
    ProjectStore.create(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(BadInput, match="schema_version.*99 is newer") as err:
        ProjectStore(path)
    assert "future.vbproj" in str(err.value)
    # the failed open released its lock: a plain SQLite tool can still fix the file
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
    db.commit()
    db.close()
    ProjectStore(path).close()


def test_readonly_open_reads_and_refuses_edits(store, tmp_path):
    cat = store.add_category("cat")
    ro = ProjectStore(store.path, readonly=True)  # works while a writer holds the project
    try:
        assert ro.categories() == [cat]
        with pytest.raises(BadInput, match="read-only"):
            ro.add_category("dog")
    finally:
        ro.close()
    with pytest.raises(BadInput, match="file not found"):
        ProjectStore(tmp_path / "none.vbproj", readonly=True)


def test_deleting_an_image_or_category_deletes_its_annotations(store, tmp_path):
    cat, dog = store.add_category("cat"), store.add_category("dog")
    a, b = store.add_image(_png(tmp_path / "a.png")), store.add_image(_png(tmp_path / "b.png"))
    for img in (a, b):
        store.add_annotations([Annotation(img.id, cat.id, Box(0, 0, 1, 1)),
                               Annotation(img.id, dog.id, Box(1, 1, 2, 2))])
    store.delete_image(a.id)
    assert store.count_annotations(a.id) == 0 and store.count_annotations(b.id) == 2
    store.delete_category(dog.id)
    assert [x.category_id for x in store.annotations(b.id)] == [cat.id]


_OTHER_WRITER = textwrap.dedent("""
    import sys
    from engine.annotations import ProjectLocked, ProjectStore
    try:
        s = ProjectStore(sys.argv[1])
    except ProjectLocked as exc:
        print("locked:", exc)
        sys.exit(3)
    s.add_category("from the other process")
    s.close()
    print("wrote")
""")


def test_second_writer_in_another_process_is_refused(store):
    def other():
        return subprocess.run([sys.executable, "-c", _OTHER_WRITER, str(store.path)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    run = other()
    assert run.returncode == 3, run.stderr
    assert "open for writing in another" in run.stdout and "p.vbproj" in run.stdout
    store.close()
    run = other()
    assert run.returncode == 0 and "wrote" in run.stdout, run.stderr
    with ProjectStore(store.path, readonly=True) as again:
        assert [c.name for c in again.categories()] == ["from the other process"]
    with pytest.raises(ProjectLocked):
        with ProjectStore(store.path):
            ProjectStore(store.path)


def test_checkpoints_run_off_the_edit_path_and_stop_on_close(tmp_path):
    import threading
    import time

    path = tmp_path / "ck.vbproj"
    s = ProjectStore.create(path)
    cat = s.add_category("thing")
    img = s.add_image(_png(tmp_path / "a.png"))
    for i in range(200):
        s.add_annotation(Annotation(img.id, cat.id, Box(i, 0, i + 1, 1)))
    assert s.execute("PRAGMA wal_autocheckpoint").fetchone()[0] > 10_000  # commits do not checkpoint
    deadline = time.monotonic() + 10
    while s._checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert s._checkpointer.checkpoints >= 1  # the background connection did it
    names = lambda: [t.name for t in threading.enumerate() if t.name == "checkpoint ck.vbproj"]  # noqa: E731
    assert names()
    s.close()
    assert names() == [] and not Path(str(path) + "-wal").exists()
    with ProjectStore(path, readonly=True) as again:
        assert again.count_annotations() == 200


def test_wal_foreign_keys_and_each_edit_committed_at_once(tmp_path):
    """WAL journal and foreign keys are on (also after reopening), and an edit is visible to another
    connection as soon as the call returns: there is no Save."""
    path = tmp_path / "p.vbproj"
    with ProjectStore.create(path) as s:
        assert s.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        cat = s.add_category("thing")
        img = s.add_image(_png(tmp_path / "a.png"))
        other = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for k in range(3):
                a = s.add_annotation(Annotation(img.id, cat.id, Box(k, k, k + 1, k + 1)))
                assert other.execute("SELECT count(*) FROM annotations").fetchone()[0] == k + 1
            s.delete_annotation(a.id)
            assert other.execute("SELECT count(*) FROM annotations").fetchone()[0] == 2
        finally:
            other.close()
    with ProjectStore(path) as s:
        assert s.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.execute("PRAGMA foreign_keys").fetchone()[0] == 1
