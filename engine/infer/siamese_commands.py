"""``visionbench eval | verify | search`` for embedding checkpoints (the Siamese family).

- eval: the verification figures of the split's identities (``engine.eval.verification``);
- verify: two image files -> distance and verdict at tau (the checkpoint's EER threshold unless
  ``--tau`` is given);
- search: a query image -> the k nearest images (or crops) of a project, from the embeddings
  stored with the project (``engine.infer.embedding_index``), embedding only what changed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore
from engine.data.identities import check_identities, identity_items, load_crops, split_identities
from engine.eval.verification import verification_report
from engine.infer.embedding_index import build_index
from engine.infer.run import inference_threads, read_model_image
from engine.infer.siamese_predictor import SiamesePredictor, require_embedding_checkpoint


def load(ckpt, device: str, command: str) -> SiamesePredictor:
    require_embedding_checkpoint(ckpt, command)
    try:
        return SiamesePredictor.from_checkpoint(ckpt, device)
    except Exception as exc:  # noqa: BLE001 - a damaged file is the user's input
        message = getattr(exc, "message", str(exc))
        raise BadInput(str(ckpt), "checkpoint", message) from None


def eval_embedding(predictor: SiamesePredictor, store: ProjectStore, split: str | None, meta: dict,
                   on_event=None, tau: float | None = None) -> dict:
    """The figures of ``split``'s identities (split by identity, as in training)."""
    items, source = identity_items(store, meta.get("identity_source") or "auto")
    check_identities(items, str(store.path))
    val_fraction = float((meta.get("config") or {}).get("val_fraction", 0.2))
    chosen = split_identities(store, items, val_fraction)[split] if split else items
    check_identities(chosen, str(store.path), f"identities of split {split!r}")
    crops = load_crops(store, chosen, predictor.input_size)
    with inference_threads(predictor):
        emb = predictor.embed_crops(crops)
    names = sorted({it.identity for it in chosen})
    index = {n: k for k, n in enumerate(names)}
    labels = np.array([index[it.identity] for it in chosen])
    report = verification_report(emb, labels, tau=tau)
    return {**report, "identity_source": source, "checkpoint_tau": predictor.tau}


def eval_embedding_command(ckpt, project, split: str | None = "val", device: str = "auto", tau=None) -> dict:
    predictor = load(ckpt, device, "eval")
    with ProjectStore(project, readonly=True) as store:
        result = eval_embedding(predictor, store, split, predictor.meta, tau=tau)
    return {"checkpoint": str(ckpt), "family": predictor.meta.get("family"), "split": split, **result}


def verify_command(ckpt, image_a, image_b, device: str = "auto", tau: float | None = None) -> dict:
    predictor = load(ckpt, device, "verify")
    a, b = read_model_image(image_a), read_model_image(image_b)
    with inference_threads(predictor):
        result = predictor.verify(a, b, tau)
    return {"checkpoint": str(ckpt), "image_a": str(image_a), "image_b": str(image_b), **result,
            "verdict": "same" if result["same"] else "different"}


def search_command(ckpt, project, query, k: int = 10, device: str = "auto", what: str = "images",
                   progress=None) -> dict:
    predictor = load(ckpt, device, "search")
    rgb = read_model_image(query)
    with ProjectStore(project, readonly=True) as store, inference_threads(predictor):
        index, how = build_index(predictor, store, ckpt, what, progress=progress)
        q = predictor.embed(rgb)
        hits = index.search(q, k)
        records = {r.id: r for r in store.images()}
        results = []
        for row, d in hits:
            image_id, ann = (int(v) for v in index.keys[row])
            results.append({"image_id": image_id, "path": records[image_id].path,
                            "annotation_id": None if ann < 0 else ann, "identity": index.identities[row] or None,
                            "distance": round(d, 6), "same": bool(d <= predictor.tau)})
    return {"checkpoint": str(ckpt), "project": str(project), "query": str(Path(query)), "k": k, "what": what,
            "tau": predictor.tau, "results": results, "index": how}
