"""ProjectStore: one SQLite file per project; every edit is its own transaction.

WAL mode with synchronous=NORMAL: a committed edit survives the process being killed (the
WAL is in the OS page cache); bulk operations run in one transaction. Checkpoints (copying the
WAL into the database file, with fsyncs) run on a background connection, not inside an edit's commit,
so a single edit stays well under 5 ms at the 99th percentile (benchmarks/store.py). A second process that
opens the project for writing gets ProjectLocked instead of racing the first.
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import quote

from .errors import BadInput, ProjectLocked
from .fsutil import make_dirs, os_cause, remove_empty_dirs
from .imageio import is_image_file, probe_image
from .limits import check_name
from .model import (SPLITS, STATUSES, Annotation, Category, ImageRecord, Polygon, Polyline, default_color,
                    geometry_from_json)

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE categories (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, color TEXT NOT NULL);
CREATE TABLE images (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, width INTEGER NOT NULL, height INTEGER NOT NULL,
    split TEXT NOT NULL DEFAULT 'train', status TEXT NOT NULL DEFAULT 'new');
CREATE TABLE annotations (
    id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    category_id INTEGER NOT NULL REFERENCES categories(id) ON DELETE CASCADE,
    kind TEXT NOT NULL, geometry TEXT NOT NULL, instance_id INTEGER, attributes TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT 'manual', score REAL, hidden INTEGER NOT NULL DEFAULT 0,
    locked INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX annotations_image ON annotations(image_id);
CREATE INDEX images_split ON images(split);
"""

# Migrations: index i upgrades from version i to i + 1.
_MIGRATIONS: list[str] = [_SCHEMA_V1]

_ANN_COLS = ("id, image_id, category_id, kind, geometry, instance_id, attributes, source, score, "
             "hidden, locked, created, updated")


# How long a write waits for another program holding the database lock before giving up.
BUSY_TIMEOUT_S = 10.0

# SQLite's own checkpoint inside a commit stays as a safety net, far beyond what the background
# checkpointer lets the WAL grow to (pages of 4 KiB).
_WAL_AUTOCHECKPOINT_PAGES = 20_000


class _Checkpointer(threading.Thread):
    """Runs PASSIVE WAL checkpoints on its own connection after commits, off the editing thread.

    PASSIVE never blocks writers; a busy or failed round is simply retried after the next commit,
    and closing the last connection checkpoints whatever is left.
    """

    def __init__(self, store: "ProjectStore", interval_s: float = 0.5):
        super().__init__(name=f"checkpoint {store.path.name}", daemon=True)
        self._path = store.path
        self._store = weakref.ref(store)  # a store dropped without close() also ends its checkpointer
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._dirty = threading.Event()
        self.checkpoints = 0  # completed rounds, for tests and diagnostics

    def mark_dirty(self) -> None:
        self._dirty.set()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)

    def run(self) -> None:
        db = sqlite3.connect(f"file:{quote(str(self._path))}", uri=True, timeout=0.05, check_same_thread=False)
        try:
            while not self._stopping.wait(self._interval_s) and self._store() is not None:
                if self._dirty.is_set():
                    self._dirty.clear()
                    try:
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        self.checkpoints += 1
                    except sqlite3.Error:
                        self._dirty.set()
        finally:
            db.close()


@dataclass
class AddFolderReport:
    added: list[ImageRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _row_to_annotation(r) -> Annotation:
    return Annotation(
        id=r[0], image_id=r[1], category_id=r[2], geometry=_stored_geometry(r[3], _loads(r[4])),
        instance_id=r[5], attributes=_loads(r[6]) if r[6] != "{}" else {}, source=r[7], score=r[8],
        hidden=bool(r[9]), locked=bool(r[10]), created=r[11], updated=r[12])


def _stored_geometry(kind: str, d: dict):
    """Geometry from what this store wrote: vertex lists are already numbers, so skip re-validation
    (opening an image with 10,000 polygons is dominated by this)."""
    if kind == "polygon":
        holes = d.get("holes")
        return Polygon(tuple(map(tuple, d["points"])), tuple(tuple(map(tuple, h)) for h in holes) if holes else ())
    if kind == "polyline":
        return Polyline(tuple(map(tuple, d["points"])))
    return geometry_from_json(kind, d)


try:  # orjson is several times faster for the geometry blobs that bulk imports write
    import orjson

    def _dumps(obj) -> str:
        return orjson.dumps(obj).decode("utf-8")

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    def _dumps(obj) -> str:
        return json.dumps(obj, separators=(",", ":"))

    _loads = json.loads


def _annotation_params(a: Annotation, with_id: bool, image_id: int | None = None,
                       category_id: int | None = None) -> tuple:
    """SQL parameters of an annotation; image_id/category_id override the annotation's own."""
    g = a.geometry
    # a hole-free polygon's JSON straight from its tuples (the same text as to_json(), which first
    # copies every vertex into a list: a fifth of the store step of a big COCO import)
    blob = _dumps({"points": g.points}) if type(g) is Polygon and not g.holes else _dumps(g.to_json())
    if "null" in blob:  # orjson writes NaN and infinities as null: such geometry could never be read back
        raise ValueError(f"a {a.kind} with a non-finite coordinate cannot be stored")
    p = (a.image_id if image_id is None else image_id, a.category_id if category_id is None else category_id,
         a.kind, blob,
         a.instance_id, _dumps(a.attributes) if a.attributes else "{}", a.source, a.score,
         int(a.hidden), int(a.locked), a.created, a.updated)
    return ((a.id,) + p) if with_id else p


def _create_schema(db: sqlite3.Connection) -> None:
    for v in range(SCHEMA_VERSION):
        for statement in _MIGRATIONS[v].split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def explain_db_error(path: Path, exc: sqlite3.Error, opening: bool = False) -> BadInput:
    """The user's environment behind an SQLite error, as BadInput naming the project and the cause."""
    text = str(exc)
    low = text.lower()
    if "full" in low:
        cause = "the disk is full (database or disk is full); nothing was changed"
    elif "readonly" in low or "read-only" in low:
        cause = "is read-only (the file or its folder cannot be written); nothing was changed"
    elif "locked" in low or "busy" in low:
        cause = f"is locked by another program ({text}); close it there and try again"
    elif "unable to open" in low:
        cause = f"cannot be opened ({text}): the folder may be missing or not readable"
    elif "disk i/o" in low:
        cause = f"{text}: the disk may be full, read-only or failing"
    elif opening:
        cause = f"not a Visionbench project ({text})"
    else:
        cause = f"database error: {text}"
    return BadInput(str(path), "project", cause)


class ProjectStore:
    """A project: categories, images (paths relative to the project's folder) and annotations."""

    def __init__(self, path: str | os.PathLike, *, create: bool = False, readonly: bool = False):
        self.path = Path(path).absolute()
        self.root = self.path.parent
        self._root_str = str(self.root)
        self.readonly = readonly
        self.created = False  # True when this store made the file (discard() may then delete it)
        self._created_dirs: list[Path] = []
        self._lock_fd: int | None = None
        self._db: sqlite3.Connection | None = None
        self._checkpointer: _Checkpointer | None = None
        self._depth = 0
        if self.path.is_dir():
            raise BadInput(str(self.path), "project", "is a folder, expected a .vbproj file")
        if not self.path.exists():
            if not create or readonly:
                raise BadInput(str(self.path), "project", "file not found")
            self._created_dirs = make_dirs(self.root, "project")
        try:
            if not readonly:
                self._acquire_lock()
                # Under the lock no other Visionbench process is creating it: the file appears whole
                # (made under a temporary name, then linked) or not at all.
                if not self.path.exists():
                    if not create:
                        raise BadInput(str(self.path), "project", "file not found")
                    self._create_file()
            self._connect()
        except sqlite3.Error as exc:
            self._abandon()
            raise explain_db_error(self.path, exc, opening=True) from None
        except OSError as exc:
            self._abandon()
            raise BadInput(str(exc.filename or self.path), "project", os_cause(exc)) from None
        except BaseException:
            self._abandon()  # a refused open (e.g. newer schema) must not keep the project locked
            raise

    def _connect(self) -> None:
        if self.readonly:
            try:
                self._open_db(f"file:{quote(str(self.path))}?mode=ro")
                return
            except sqlite3.OperationalError:
                self._close_db()
                # Read-only media: SQLite cannot create the WAL index beside the file. A project
                # closed cleanly has everything in the file itself, which can then be read as is.
                wal = Path(f"{self.path}-wal")
                if wal.exists() and wal.stat().st_size > 0:
                    raise BadInput(str(self.path), "project", f"cannot be read here: the folder is read-only and "
                                   f"{wal.name} holds changes not yet in the project file; open it once "
                                   "where the folder is writable") from None
                self._open_db(f"file:{quote(str(self.path))}?mode=ro&immutable=1")
                return
        self._open_db(f"file:{quote(str(self.path))}")
        self._checkpointer = _Checkpointer(self)
        self._checkpointer.start()

    def _open_db(self, uri: str) -> None:
        self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_S)
        self._db.execute("PRAGMA foreign_keys=ON")
        if not self.readonly:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
        self._migrate()

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _create_file(self) -> None:
        """Make the project file complete under a temporary name, then link it into place: another
        process sees no project or a whole one, never a half-initialized file."""
        tmp = self.root / f".{self.path.name}.{secrets.token_hex(6)}.creating"
        try:
            db = sqlite3.connect(str(tmp), isolation_level=None)
            try:
                db.execute("BEGIN")
                _create_schema(db)
                db.execute("COMMIT")
            finally:
                db.close()
            try:
                os.link(tmp, self.path)  # fails if the name exists: never replaces someone's project
            except FileExistsError:
                return  # made by a process that does not use our lock: open theirs
            except OSError:
                if self.path.exists():  # no hard links on this file system: rename, still under the lock
                    return
                os.rename(tmp, self.path)
            self.created = True
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}-journal").unlink(missing_ok=True)

    def _abandon(self) -> None:
        """Undo what this constructor did after a failure: what it created, and only that."""
        if self.created:
            self.discard()
            return
        self.close()
        remove_empty_dirs(self._created_dirs)

    def discard(self) -> None:
        """Close and delete a project this store created (a failed first import leaves no trace).
        A project this store did not create is only closed: a loser never deletes a winner's files."""
        if not self.created:
            self.close()
            return
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._close_db()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        if self._lock_fd is not None:
            # removed while still held: a process waiting on this file sees it replaced (see _acquire_lock)
            Path(f"{self.path}.lock").unlink(missing_ok=True)
        self._release_lock()
        self.created = False
        remove_empty_dirs(self._created_dirs)

    # ---- life cycle -------------------------------------------------------------------------
    @classmethod
    def create(cls, path) -> "ProjectStore":
        return cls(path, create=True)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()  # before the last connection closes and checkpoints the rest
            self._checkpointer = None
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
            self._db = None
        self._release_lock()

    def __enter__(self) -> "ProjectStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _acquire_lock(self) -> None:
        lock_path = str(self.path) + ".lock"
        try:
            import fcntl
        except ImportError:  # no flock on this platform: SQLite's own locking still keeps the file sound
            fcntl = None
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise BadInput(lock_path, "project", f"cannot open the project for writing: {os_cause(exc)}") from None
            if fcntl is None:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise ProjectLocked(str(self.path)) from None
            # A holder that discarded its new project deleted this lock file before letting go: a
            # lock on the deleted file guards nothing, so take the one now at that name.
            try:
                current = os.stat(lock_path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def _migrate(self) -> None:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        version = 0
        if has_meta:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
        elif self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise BadInput(str(self.path), "project", "an SQLite file, but not a Visionbench project")
        if version > SCHEMA_VERSION:
            raise BadInput(str(self.path), "schema_version",
                           f"{version} is newer than this Visionbench understands ({SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            raise BadInput(str(self.path), "schema_version", f"{version} needs migrating; open it for writing")
        with self.transaction():
            for v in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[v].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested uses join the outer one (so bulk work commits once)."""
        if self.readonly:
            raise BadInput(str(self.path), "project", "is open read-only; reopen it for writing to edit")
        if self._depth == 0:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise explain_db_error(self.path, exc) from None
        self._depth += 1
        try:
            yield
            if self._depth == 1:
                self._db.execute("COMMIT")
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0:
                self._rollback()
                if isinstance(exc, sqlite3.OperationalError):
                    raise explain_db_error(self.path, exc) from None
            raise
        else:
            self._depth -= 1
            if self._depth == 0 and self._checkpointer is not None:
                self._checkpointer.mark_dirty()

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (a full disk); a second ROLLBACK would
        # fail with "no transaction is active" and hide the real cause
        if self._db is not None and self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    # ---- categories ---------------------------------------------------------------------------
    def categories(self) -> list[Category]:
        return [Category(*r) for r in self._db.execute("SELECT id, name, color FROM categories ORDER BY id")]

    def category(self, category_id: int) -> Category:
        r = self._db.execute("SELECT id, name, color FROM categories WHERE id=?", (category_id,)).fetchone()
        if r is None:
            raise KeyError(f"no category with id {category_id}")
        return Category(*r)

    def category_by_name(self, name: str) -> Category | None:
        r = self._db.execute("SELECT id, name, color FROM categories WHERE name=?", (name,)).fetchone()
        return Category(*r) if r else None

    def add_category(self, name: str, color: str | None = None, id: int | None = None) -> Category:
        name = check_name(name, str(self.path), "category.name")
        if self.category_by_name(name):
            raise BadInput(str(self.path), "category.name", f"{name!r} exists already")
        with self.transaction():
            n = self._db.execute("SELECT count(*) FROM categories").fetchone()[0]
            cur = self._db.execute("INSERT INTO categories (id, name, color) VALUES (?, ?, ?)",
                                   (id, name, color or default_color(n)))
        return Category(cur.lastrowid, name, color or default_color(n))

    def ensure_category(self, name: str, color: str | None = None) -> Category:
        return self.category_by_name(name) or self.add_category(name, color)

    def update_category(self, category_id: int, name: str | None = None, color: str | None = None) -> Category:
        cat = self.category(category_id)
        if name is not None:
            name = check_name(name, str(self.path), "category.name")
        new = replace(cat, name=(name if name is not None else cat.name), color=color or cat.color)
        other = self.category_by_name(new.name)
        if not new.name or (other and other.id != category_id):
            raise BadInput(str(self.path), "category.name", f"{new.name!r} is empty or exists already")
        with self.transaction():
            self._db.execute("UPDATE categories SET name=?, color=? WHERE id=?", (new.name, new.color, category_id))
        return new

    def delete_category(self, category_id: int) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM categories WHERE id=?", (category_id,))

    # ---- images -------------------------------------------------------------------------------
    @property
    def _root_real(self) -> str:
        real = getattr(self, "_root_real_cache", None)
        if real is None:
            real = self._root_real_cache = os.path.realpath(self._root_str)
        return real

    def _rel(self, file: Path) -> str:
        # os.path on strings: imports call this per image, and pathlib objects cost 10x as much.
        # Symlinks are resolved on both sides so one file always gets one path, however it was reached.
        rel = os.path.relpath(os.path.realpath(file), self._root_real)
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def image_path(self, image: ImageRecord | int) -> Path:
        rec = self.image(image) if isinstance(image, int) else image
        return (self.root / rec.path).resolve()

    def images(self, split: str | None = None, status: str | None = None) -> list[ImageRecord]:
        q, args = "SELECT id, path, width, height, split, status FROM images", []
        conds = []
        if split:
            conds.append("split=?")
            args.append(split)
        if status:
            conds.append("status=?")
            args.append(status)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        return [ImageRecord(*r) for r in self._db.execute(q + " ORDER BY id", args)]

    def image(self, image_id: int) -> ImageRecord:
        r = self._db.execute("SELECT id, path, width, height, split, status FROM images WHERE id=?",
                             (image_id,)).fetchone()
        if r is None:
            raise KeyError(f"no image with id {image_id}")
        return ImageRecord(*r)

    def image_by_path(self, rel_path: str) -> ImageRecord | None:
        r = self._db.execute("SELECT id, path, width, height, split, status FROM images WHERE path=?",
                             (rel_path,)).fetchone()
        return ImageRecord(*r) if r else None

    def count_images(self) -> int:
        return self._db.execute("SELECT count(*) FROM images").fetchone()[0]

    def add_image(self, file: str | os.PathLike, width: int | None = None, height: int | None = None,
                  split: str = "train", status: str = "new") -> ImageRecord:
        """Add an image file (absolute, or relative to the current directory); size probed if not given."""
        file = Path(file)
        if width is None or height is None:
            width, height = probe_image(file)
        self._check_split_status(split, status)
        rel = self._rel(file)
        with self.transaction():
            cur = self._db.execute("INSERT INTO images (path, width, height, split, status) VALUES (?,?,?,?,?)",
                                   (rel, int(width), int(height), split, status))
        return ImageRecord(cur.lastrowid, rel, int(width), int(height), split, status)

    def insert_images(self, rows: list[tuple[str, int, int, str, str]]) -> list[ImageRecord]:
        """Bulk path for imports: rows of (path relative to the project, width, height, split,
        status), checked and inserted in one transaction; returns the new records in order."""
        for _, _, _, split, status in rows:
            self._check_split_status(split, status)
        out = []
        with self.transaction():
            for rel, w, h, split, status in rows:
                cur = self._db.execute("INSERT INTO images (path, width, height, split, status) VALUES (?,?,?,?,?)",
                                       (rel, int(w), int(h), split, status))
                out.append(ImageRecord(cur.lastrowid, rel, int(w), int(h), split, status))
        return out

    def add_folder(self, folder: str | os.PathLike, recursive: bool = True, split: str = "train") -> AddFolderReport:
        """Add every image under `folder`; the report lists files skipped and why."""
        folder = Path(folder)
        if not folder.is_dir():
            raise BadInput(str(folder), "folder", "not a folder")
        report = AddFolderReport()
        files = sorted(folder.rglob("*") if recursive else folder.glob("*"))
        known = {r[0] for r in self._db.execute("SELECT path FROM images")}
        rows = []
        for f in files:
            if f.is_dir():
                continue
            if not is_image_file(f):
                report.skipped.append((str(f), "not an image file type"))
                continue
            rel = self._rel(f)
            if rel in known:
                report.skipped.append((str(f), "already in the project"))
                continue
            try:
                w, h = probe_image(f)
            except BadInput as exc:
                report.skipped.append((str(f), exc.problem.message))
                continue
            known.add(rel)
            rows.append((rel, w, h, split))
        with self.transaction():
            for rel, w, h, sp in rows:
                cur = self._db.execute("INSERT INTO images (path, width, height, split) VALUES (?,?,?,?)",
                                       (rel, w, h, sp))
                report.added.append(ImageRecord(cur.lastrowid, rel, w, h, sp, "new"))
        return report

    def _check_split_status(self, split: str, status: str) -> None:
        if split not in SPLITS:
            raise BadInput(str(self.path), "split", f"{split!r} is not one of {', '.join(SPLITS)}")
        if status not in STATUSES:
            raise BadInput(str(self.path), "status", f"{status!r} is not one of {', '.join(STATUSES)}")

    def set_status(self, image_id: int, status: str) -> ImageRecord:
        self._check_split_status("train", status)
        with self.transaction():
            self._db.execute("UPDATE images SET status=? WHERE id=?", (status, image_id))
        return self.image(image_id)

    def set_split(self, image_id: int, split: str) -> ImageRecord:
        self._check_split_status(split, "new")
        with self.transaction():
            self._db.execute("UPDATE images SET split=? WHERE id=?", (split, image_id))
        return self.image(image_id)

    def delete_image(self, image_id: int) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM images WHERE id=?", (image_id,))

    # ---- annotations --------------------------------------------------------------------------
    def annotations(self, image_id: int) -> list[Annotation]:
        return [_row_to_annotation(r) for r in self._db.execute(
            f"SELECT {_ANN_COLS} FROM annotations WHERE image_id=? ORDER BY id", (image_id,))]

    def all_annotations(self, split: str | None = None) -> dict[int, list[Annotation]]:
        """image id -> annotations, for every image (of a split), in one query."""
        q = f"SELECT {', '.join('a.' + c.strip() for c in _ANN_COLS.split(','))} FROM annotations a"
        args: tuple = ()
        if split:
            q += " JOIN images i ON i.id = a.image_id WHERE i.split=?"
            args = (split,)
        out: dict[int, list[Annotation]] = {}
        for r in self._db.execute(q + " ORDER BY a.image_id, a.id", args):
            out.setdefault(r[1], []).append(_row_to_annotation(r))
        return out

    def annotation(self, annotation_id: int) -> Annotation:
        r = self._db.execute(f"SELECT {_ANN_COLS} FROM annotations WHERE id=?", (annotation_id,)).fetchone()
        if r is None:
            raise KeyError(f"no annotation with id {annotation_id}")
        return _row_to_annotation(r)

    def count_annotations(self, image_id: int | None = None) -> int:
        if image_id is None:
            return self._db.execute("SELECT count(*) FROM annotations").fetchone()[0]
        return self._db.execute("SELECT count(*) FROM annotations WHERE image_id=?", (image_id,)).fetchone()[0]

    def add_annotation(self, ann: Annotation) -> Annotation:
        """Insert; keeps `ann.id` when given (undo of a delete restores the same id)."""
        now = time.time()
        ann = replace(ann, updated=now)
        with self.transaction():
            if ann.id is None:
                cur = self._db.execute(
                    "INSERT INTO annotations (image_id, category_id, kind, geometry, instance_id, attributes, "
                    "source, score, hidden, locked, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    _annotation_params(ann, False))
                ann = replace(ann, id=cur.lastrowid)
            else:
                self._db.execute(f"INSERT INTO annotations ({_ANN_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                 _annotation_params(ann, True))
        return ann

    def add_annotations(self, anns: Iterable[Annotation]) -> list[Annotation]:
        with self.transaction():
            return [self.add_annotation(a) for a in anns]

    def update_annotation(self, ann: Annotation) -> Annotation:
        if ann.id is None:
            raise ValueError("update_annotation needs a stored annotation (id is None)")
        ann = replace(ann, updated=time.time())
        with self.transaction():
            cur = self._db.execute(
                "UPDATE annotations SET image_id=?, category_id=?, kind=?, geometry=?, instance_id=?, "
                "attributes=?, source=?, score=?, hidden=?, locked=?, created=?, updated=? WHERE id=?",
                _annotation_params(ann, False) + (ann.id,))
            if cur.rowcount != 1:
                raise KeyError(f"no annotation with id {ann.id}")
        return ann

    def delete_annotation(self, annotation_id: int) -> Annotation:
        """Delete and return what was deleted (for undo)."""
        with self.transaction():
            old = self.annotation(annotation_id)
            self._db.execute("DELETE FROM annotations WHERE id=?", (annotation_id,))
        return old

    def bulk_insert_annotations(self, anns: list[Annotation],
                                remap: list[tuple[int, int]] | None = None) -> int:
        """Fast path for imports: many new annotations in one statement, ids assigned by SQLite."""
        with self.transaction():
            self._db.executemany(
                "INSERT INTO annotations (image_id, category_id, kind, geometry, instance_id, attributes, "
                "source, score, hidden, locked, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (_annotation_params(a, False) for a in anns) if remap is None else
                (_annotation_params(a, False, i, c) for a, (i, c) in zip(anns, remap)))
        return len(anns)

    def execute(self, sql: str, args: tuple = ()):
        """Read-only escape hatch for reports and benchmarks."""
        return self._db.execute(sql, args)
