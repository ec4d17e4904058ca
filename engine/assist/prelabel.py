"""Pre-labelling: a model proposes shapes on many images, to be reviewed in the workbench.

``prelabel_job`` runs on a worker thread. It never writes the project (the workbench's store
belongs to the GUI thread and holds the write lock): each image's proposals are put into
``sink`` as ``(image_id, [Annotation])`` as soon as they exist, and the GUI stores them in
batches while the job goes on, so a cancelled run keeps what it had done. Proposals follow the
ground-truth rule (``engine.data.truth``): they never train or score until accepted.
"""
from __future__ import annotations

from pathlib import Path

from engine.annotations.errors import BadInput
from engine.annotations.model import Annotation
from engine.annotations.store import ProjectStore
from engine.data.truth import is_proposal
from engine.jobs.events import Log, Progress

STATUSES = ("new", "in_progress", "done", "reviewed")


def images_to_prelabel(store: ProjectStore, split: str | None = None, status: str | None = None) -> list[int]:
    """Ids of the images of ``split`` (None: all) with ``status`` (None: any), in project order."""
    if status is not None and status not in STATUSES:
        raise BadInput("<pre-label>", "status", f"{status!r} is not one of {', '.join(STATUSES)}")
    return [rec.id for rec in store.images(split=split, status=status)]


def replaced_by_run(old: Annotation, source: str) -> bool:
    """A new run of a model replaces its own proposals not yet reviewed; accepted ones are the user's."""
    return old.source == source and is_proposal(old)


def prelabel_job(token, checkpoint, project, image_ids: list[int], score_threshold: float | None = None,
                 device: str = "auto", sink=None, snap: bool = True):
    """Job: predict ``image_ids`` of ``project`` with ``checkpoint`` (any registered family, an
    ONNX YOLO or a torchvision detector). Puts ``(image_id, proposals)`` into ``sink`` (anything
    with ``put``) per image; yields Progress per image (each a cancel point). ``snap``: fit each
    proposed box to the object's edges (``engine.assist.snap``). Returns {"images", "proposals",
    "source", "skipped"}; an image the model cannot read is skipped with a warning, not a failure
    of the whole run."""
    from engine.infer.run import (checkpoint_category_ids, inference_threads, load_predictor, predict_annotations,
                                  prediction_source, read_model_image, stored_form)
    from engine.assist.snap import snap_proposals
    from engine.infer.thresholds import Thresholds

    ids = list(image_ids)
    thresholds = Thresholds(score_threshold=score_threshold)
    yield Progress(0, len(ids), "loading the model")
    predictor, meta, spec = load_predictor(checkpoint, device)
    thresholds.check_for(spec.kind, checkpoint)
    source = prediction_source(checkpoint, meta)
    store = ProjectStore(project, readonly=True)
    try:
        category_ids = checkpoint_category_ids(store, meta, checkpoint)
        records = {rec.id: rec for rec in store.images()}
        paths = {i: store.image_path(records[i]) for i in ids if i in records}
        next_instance = int(store.execute("SELECT COALESCE(MAX(instance_id), 0) FROM annotations").fetchone()[0])
    finally:
        store.close()
    total = skipped = 0
    with inference_threads(predictor):
        for n, image_id in enumerate(ids):
            path = paths.get(image_id)
            if path is None:
                skipped += 1
                continue
            try:
                rgb = read_model_image(path)
            except BadInput as exc:
                skipped += 1
                yield Log(f"skipped: {exc}", level="warning")
                continue
            anns, next_instance = predict_annotations(predictor, rgb, image_id, category_ids, source, {},
                                                      next_instance, thresholds)
            proposals = stored_form(anns, "proposals")
            if snap:
                proposals = snap_proposals(rgb, proposals)
            total += len(proposals)
            if sink is not None:
                sink.put((image_id, proposals))
            yield Progress(n + 1, len(ids), f"{Path(path).name}: {len(proposals)} proposals")
    return {"images": len(ids) - skipped, "proposals": total, "source": source, "skipped": skipped,
            "checkpoint": str(checkpoint)}
