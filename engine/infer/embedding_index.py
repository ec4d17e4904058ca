"""Embeddings stored with the project, and nearest-neighbour search over them.

A project ``P.vbproj`` keeps its embeddings in ``P.vbproj.embeddings/<checkpoint digest>-<what>.npz``:
one file per checkpoint (its content digest, so retraining into the same file name invalidates
them) and per kind of item (``images``: whole images; ``crops``: ground-truth annotations).
Each row remembers its image file's (mtime, size): a changed or replaced image is embedded
again, a removed one dropped, and only what changed runs through the network.

Search is exact: unit embeddings make ``d^2 = 2 - 2 cos``, so one matrix-vector product and an
``argpartition`` give the top k (see benchmarks/siamese.py for its time over 100,000 x 128).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine.annotations.store import ProjectStore
from engine.data.identities import IdentityItem, annotation_item, identity_items, image_stamp, load_crops
from engine.data.truth import is_ground_truth

WHAT = ("images", "crops")


def checkpoint_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def index_folder(project: str | Path) -> Path:
    project = Path(project)
    return project.with_name(project.name + ".embeddings")


def search_items(store: ProjectStore, what: str = "images") -> list[IdentityItem]:
    """The items a search runs over: every image, or every ground-truth annotation with an
    extent (crops), each labelled with its identity when it has one."""
    if what == "images":
        # a whole image's identity is that of its whole-image identity box, when it has one
        named = {it.image_id: it.identity for it in identity_items(store, "attribute")[0] if it.box is None}
        return [IdentityItem(r.id, named.get(r.id, ""), None, None) for r in store.images()]
    items, _ = identity_items(store, "attribute")
    by_ann = {it.annotation_id: it for it in items}
    out = []
    records = {r.id: r for r in store.images()}
    for image_id, anns in store.all_annotations().items():
        for a in anns:
            if not is_ground_truth(a) or image_id not in records:
                continue
            it = by_ann.get(a.id) or annotation_item(a, "", records[image_id])
            if it is not None and it.box is not None:
                out.append(it)
    return out


@dataclass
class EmbeddingIndex:
    """Unit embeddings [N, D] of items, with (image_id, annotation_id or -1) keys."""

    keys: np.ndarray          # int64 [N, 2]
    vectors: np.ndarray       # float32 [N, D]
    identities: list[str]

    def search(self, query: np.ndarray, k: int = 10, exclude: tuple[int, int] | None = None
               ) -> list[tuple[int, float]]:
        """The k nearest rows to ``query`` [D]: [(row, distance)], nearest first."""
        return top_k(self.vectors, query, k, None if exclude is None else self.row_of(exclude))

    def row_of(self, key: tuple[int, int]) -> int | None:
        hit = np.flatnonzero((self.keys[:, 0] == key[0]) & (self.keys[:, 1] == key[1]))
        return int(hit[0]) if len(hit) else None


def _one_blas_thread():
    """A matrix-vector product is bound by memory: a second BLAS thread only contends for the
    same bandwidth (16 ms with two threads, 12 ms with one, 100,000 x 128 on a busy 2-core machine)."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController  # installed with scikit-learn

            _blas = ThreadpoolController()
        except ImportError:
            _blas = False
    return _blas.limit(limits=1, user_api="blas") if _blas else contextlib.nullcontext()


_blas = None


def top_k(vectors: np.ndarray, query: np.ndarray, k: int, exclude: int | None = None) -> list[tuple[int, float]]:
    """Exact top-k by Euclidean distance for unit rows of ``vectors`` [N, D] and a unit query [D]."""
    n = len(vectors)
    if n == 0:
        return []
    with _one_blas_thread():
        sims = vectors @ np.asarray(query, vectors.dtype)
    if exclude is not None:
        sims[exclude] = -np.inf
    k = min(int(k), n - (exclude is not None))
    if k <= 0:
        return []
    part = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
    part = part[np.argsort(-sims[part], kind="stable")]
    d = np.sqrt(np.maximum(2.0 - 2.0 * sims[part].astype(np.float64), 0.0))
    return [(int(r), float(x)) for r, x in zip(part, d)]


def _save_atomic(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_index(predictor, store: ProjectStore, checkpoint: str | Path, what: str = "images",
                progress: Callable[[int, int], None] | None = None, token=None, batch: int = 256
                ) -> tuple[EmbeddingIndex, dict]:
    """The project's stored index for ``checkpoint`` brought up to date (and saved); returns
    (index, {"embedded": n new, "reused": n kept, "file": path})."""
    if what not in WHAT:
        raise ValueError(f"what must be one of {', '.join(WHAT)}")
    items = search_items(store, what)
    stamps = np.array([image_stamp(store.image_path(it.image_id)) for it in items], np.int64).reshape(-1, 2)
    keys = np.array([it.key for it in items], np.int64).reshape(-1, 2)
    file = index_folder(store.path) / f"{checkpoint_digest(checkpoint)}-{what}.npz"
    old: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    if file.is_file():
        try:
            with np.load(file) as z:
                for key, stamp, vec in zip(z["keys"], z["stamps"], z["vectors"]):
                    old[(int(key[0]), int(key[1]))] = (stamp, vec)
        except (OSError, ValueError, KeyError):
            old = {}  # a damaged index is rebuilt
    dim = predictor.model.embedding_dim
    vectors = np.zeros((len(items), dim), np.float32)
    todo = []
    for row, (key, stamp) in enumerate(zip(keys, stamps)):
        hit = old.get((int(key[0]), int(key[1])))
        if hit is not None and tuple(hit[0]) == tuple(stamp) and len(hit[1]) == dim:
            vectors[row] = hit[1]
        else:
            todo.append(row)
    for start in range(0, len(todo), batch):
        rows = todo[start:start + batch]
        crops = load_crops(store, [items[r] for r in rows], predictor.input_size,
                           token.raise_if_cancelled if token is not None else None)
        vectors[rows] = predictor.embed_crops(crops, token=token)
        if progress is not None:
            progress(min(start + batch, len(todo)), len(todo))
    if todo or len(old) != len(items):
        _save_atomic(file, keys=keys, stamps=stamps, vectors=vectors)
    index = EmbeddingIndex(keys, vectors, [it.identity for it in items])
    return index, {"embedded": len(todo), "reused": len(items) - len(todo), "file": str(file)}
