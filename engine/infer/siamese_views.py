"""Job functions behind the workbench's verification and image search docks (no Qt here).

Items are ``(image_id, annotation_id or None)``: a whole image or one annotation's crop. The
predictor is loaded once per checkpoint file version and kept (a dock asks again and again).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.geometry import bounds
from engine.annotations.imageio import read_image_rgb
from engine.annotations.store import ProjectStore
from engine.data.identities import check_identities, identity_items, load_crops, split_identities, square_crop
from engine.eval.verification import roc, verification_pairs
from engine.infer.embedding_index import build_index
from engine.infer.run import inference_threads
from engine.jobs.events import Progress

THUMB = 72
_lock = threading.Lock()
_cache: dict[tuple, object] = {}


def predictor_for(checkpoint: str | Path, device: str = "auto"):
    """The SiamesePredictor of ``checkpoint`` (kept while the file is unchanged); BadInput naming
    the file for a missing file or a checkpoint of another kind."""
    from engine.infer.siamese_commands import load

    path = Path(checkpoint)
    try:
        st = path.stat()
    except OSError:
        raise BadInput(str(path), "checkpoint", "file not found") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, device)
    with _lock:
        if key not in _cache:
            _cache.clear()
            _cache[key] = load(path, device, "this view")
        return _cache[key]


def _picture(store: ProjectStore, item: tuple[int, int | None], size: int) -> np.ndarray:
    image_id, annotation_id = item
    rgb = read_image_rgb(store.image_path(image_id))
    box = None
    if annotation_id is not None:
        box = tuple(float(v) for v in bounds(store.annotation(int(annotation_id)).geometry))
    return square_crop(rgb, box, size)


def verify_pair_job(token, checkpoint: str, project: str, a: tuple, b: tuple, device: str = "auto"):
    """{"distance", "tau", "pictures": [uint8 [THUMB, THUMB, 3] x 2]} for items a and b."""
    yield Progress(0, 1, "embedding the two pictures")
    predictor = predictor_for(checkpoint, device)
    with ProjectStore(project, readonly=True) as store:
        crops = np.stack([_picture(store, it, predictor.input_size) for it in (a, b)])
        thumbs = [_picture(store, it, THUMB) for it in (a, b)]
    token.raise_if_cancelled()
    with inference_threads(predictor):
        e = predictor.embed_crops(crops)
    return {"what": "pair", "distance": predictor.distance(e[0], e[1]), "tau": predictor.tau, "pictures": thumbs}


def evaluate_pairs_job(token, checkpoint: str, project: str, split: str = "val", device: str = "auto"):
    """The ROC of ``split``'s identity pairs and the embeddings for N-way tests:
    {"fpr", "tpr", "thresholds", "eer", "auc", "tau", "distances", "same", "embeddings", "labels"}."""
    predictor = predictor_for(checkpoint, device)
    with ProjectStore(project, readonly=True) as store:
        items, _ = identity_items(store, predictor.meta.get("identity_source") or "auto")
        check_identities(items, str(project))
        val_fraction = float((predictor.meta.get("config") or {}).get("val_fraction", 0.2))
        chosen = split_identities(store, items, val_fraction)[split]
        check_identities(chosen, str(project), f"identities of split {split!r}")
        yield Progress(0, len(chosen), f"reading {len(chosen)} pictures of split {split}")
        crops = load_crops(store, chosen, predictor.input_size, token.raise_if_cancelled)
    embeddings = []
    with inference_threads(predictor):
        for start in range(0, len(crops), 128):
            token.raise_if_cancelled()
            embeddings.append(predictor.embed_crops(crops[start:start + 128]))
            yield Progress(min(start + 128, len(crops)), len(crops), "embedding")
    emb = np.concatenate(embeddings)
    names = sorted({it.identity for it in chosen})
    index = {n: k for k, n in enumerate(names)}
    labels = np.array([index[it.identity] for it in chosen])
    i, j, same = verification_pairs(labels)
    d = np.linalg.norm(emb[i].astype(np.float64) - emb[j], axis=1)
    r = roc(d, same)
    return {"what": "roc", "split": split, "fpr": r["fpr"], "tpr": r["tpr"], "thresholds": r["thresholds"],
            "eer": r["eer"], "auc": r["auc"], "tau": r["tau"], "distances": d, "same": same,
            "embeddings": emb, "labels": labels, "identities": len(names)}


def search_job(token, checkpoint: str, project: str, query: tuple, k: int = 10, what: str = "images",
               device: str = "auto"):
    """The k items of the project nearest to ``query`` (itself left out): {"results": [{"image_id",
    "annotation_id", "path", "identity", "distance", "picture"}], "query_picture", "tau", "index"}."""
    predictor = predictor_for(checkpoint, device)
    events = []
    with ProjectStore(project, readonly=True) as store, inference_threads(predictor):
        index, how = build_index(predictor, store, checkpoint, what, token=token,
                                 progress=lambda done, total: events.append(Progress(done, total, "embedding")))
        yield from events
        q = predictor.embed_crops(_picture(store, query, predictor.input_size)[None])[0]
        key = (int(query[0]), -1 if query[1] is None else int(query[1]))
        hits = index.search(q, k, exclude=key)
        records = {r.id: r for r in store.images()}
        results = []
        for row, d in hits:
            image_id, ann = (int(v) for v in index.keys[row])
            item = (image_id, None if ann < 0 else ann)
            results.append({"image_id": image_id, "annotation_id": item[1], "path": records[image_id].path,
                            "identity": index.identities[row] or None, "distance": d,
                            "picture": _picture(store, item, THUMB)})
        query_picture = _picture(store, query, THUMB)
    return {"what": "search", "results": results, "query_picture": query_picture, "tau": predictor.tau, "index": how}
