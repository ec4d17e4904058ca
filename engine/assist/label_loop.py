"""The label loop: rounds of model-assisted labelling.

A round is ONE background job (:func:`label_loop_round`): train a family on the images marked
done, then pre-label the next batch of ``new`` images with the checkpoint just made. The user
reviews the proposals (the workbench's review mode) and starts the next round; what became of
the previous round's proposals is counted from the project itself (:func:`round_statistics`),
so the counts survive a restart and need no bookkeeping in the review.

Training sees only the done images because it runs on a snapshot project holding just those
images (pointing at the same files) and their ground truth: that works for any registered
family, including plugins, whose trainers know nothing of image statuses. The rounds are kept
in ``<project folder>/models/label-loop/rounds.json`` beside their checkpoints.

Qt-free; torch is imported only inside the job (the workbench imports this module).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore
from engine.data.truth import MODEL_SCORE, ground_truth, is_proposal
from engine.jobs.events import Log

DONE_STATUSES = ("done", "reviewed")  # what a round trains on
# The assisting model a round trains unless told otherwise. One round on the demo shapes (100 done
# images, 10 CPU minutes, boxes snapped): Mask R-CNN's proposals are accepted as they are for 85 %
# of the objects, YOLO's for 67 % (its 160 px input with a 10 x 10 grid finds fewer objects).
# It trains from boxes alone too (a box without a drawn mask is its own mask).
DEFAULT_FAMILY = "maskrcnn"
LOOP_FOLDER = ("models", "label-loop")
ROUNDS_FILE = "rounds.json"
STAT_KEYS = ("accepted", "edited", "rejected", "drawn", "open")


@dataclass
class LoopRound:
    """One finished round. ``stats`` is None while its proposals are being reviewed and is frozen
    (see :func:`round_statistics`) when the next round starts."""

    number: int
    family: str
    checkpoint: str
    source: str               # the proposals' ``source`` ("<family>:<checkpoint stem>")
    image_ids: list[int]      # the images pre-labelled this round
    trained_on: int           # done images the model trained on (train + val)
    proposals: int            # proposals the round made
    train_seconds: float = 0.0
    stats: dict | None = None
    extra: dict = field(default_factory=dict)


def loop_folder(project: str | Path) -> Path:
    """Where the rounds' checkpoints and ``rounds.json`` live: <project folder>/models/label-loop."""
    return Path(project).resolve().parent.joinpath(*LOOP_FOLDER)


def load_rounds(project: str | Path) -> list[LoopRound]:
    """The rounds run so far on ``project`` (none when the file is missing or unreadable)."""
    path = loop_folder(project) / ROUNDS_FILE
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [LoopRound(**row) for row in rows]
    except (OSError, ValueError, TypeError):
        return []


def save_rounds(project: str | Path, rounds: list[LoopRound]) -> Path:
    """Write ``rounds.json`` atomically (a temp file, then a rename)."""
    folder = loop_folder(project)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ROUNDS_FILE
    tmp = folder / f".{ROUNDS_FILE}.tmp"
    tmp.write_text(json.dumps([asdict(r) for r in rounds], indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def next_batch(store: ProjectStore, size: int) -> list[int]:
    """The first ``size`` images (project order) still ``new`` and holding no open proposal:
    images with proposals wait for their review, not for more proposals."""
    if size < 1:
        raise BadInput("<label loop>", "batch_size", f"must be at least 1, got {size}")
    from engine.assist.review import images_with_proposals

    waiting = images_with_proposals(store)
    return [rec.id for rec in store.images(status="new") if rec.id not in waiting][:size]


def round_statistics(store: ProjectStore, rnd: LoopRound) -> dict:
    """What became of round ``rnd``'s proposals, counted on its images as they are now:

    - accepted: accepted unchanged; edited: changed, then accepted (``engine.assist.review``);
    - open: still waiting for a decision; rejected: made but neither accepted nor open;
    - drawn: ground-truth objects drawn by hand (shapes sharing an instance are one object).
    """
    out = dict.fromkeys(STAT_KEYS, 0)
    drawn = set()
    for image_id in rnd.image_ids:
        for a in store.annotations(image_id):
            if is_proposal(a):
                out["open"] += a.source == rnd.source
            elif a.source == rnd.source and MODEL_SCORE in a.attributes:
                out["edited" if a.attributes.get("edited") else "accepted"] += 1
            elif MODEL_SCORE not in a.attributes:
                drawn.add((image_id, a.instance_id) if a.instance_id is not None else (image_id, -a.id))
    out["drawn"] = len(drawn)
    out["rejected"] = max(0, rnd.proposals - out["accepted"] - out["edited"] - out["open"])
    return out


def training_snapshot(project: str | Path, dest: str | Path) -> dict:
    """Write at ``dest`` a project holding only the done (or reviewed) images of ``project`` (the
    same files, same splits and categories) with their ground truth. Returns {"train", "val",
    "test"}: how many images of each split it holds."""
    src = ProjectStore(project, readonly=True)
    try:
        dst = ProjectStore.create(dest)
        try:
            with dst.transaction():
                for c in src.categories():
                    dst.add_category(c.name, c.color, id=c.id)
            counts = {"train": 0, "val": 0, "test": 0}
            anns = []
            with dst.transaction():
                for status in DONE_STATUSES:
                    for rec in src.images(status=status):
                        new = dst.add_image(src.image_path(rec), rec.width, rec.height, rec.split, rec.status)
                        counts[rec.split] = counts.get(rec.split, 0) + 1
                        anns += [a.with_(id=None, image_id=new.id) for a in ground_truth(src.annotations(rec.id))]
            dst.bulk_insert_annotations(anns)
        finally:
            dst.close()
    finally:
        src.close()
    return counts


def round_config(family: str, device: str, overrides: dict | None = None) -> dict:
    """The family's preset for ``device``'s type, updated with ``overrides`` (imports torch)."""
    from engine.device import pick_device
    from engine.models.registry import get_family

    spec = get_family(family)
    try:
        device_type = pick_device(device).type
    except ValueError as exc:
        raise BadInput(str(device), "device", str(exc)) from None
    cfg = spec.preset(device_type)
    cfg.update(overrides or {})
    cfg["device"] = device
    return cfg


def label_loop_round(token, project: str, number: int, family: str = DEFAULT_FAMILY, batch_size: int = 20,
                     score_threshold: float | None = 0.25, config: dict | None = None, device: str = "auto",
                     sink=None, snap: bool = True):
    """Job: round ``number`` of the label loop on ``project``.

    1. snapshot the done images (:func:`training_snapshot`) and train ``family`` on them
       (``config`` overrides its preset; "max_seconds" is the time budget), writing
       ``models/label-loop/round-<number>.ckpt``;
    2. pre-label the next ``batch_size`` new images (:func:`next_batch`) with that checkpoint,
       putting ``(image_id, proposals)`` into ``sink`` as ``engine.assist.prelabel`` does (``snap``:
       boxes fitted to the objects' edges).

    The project is only read. Returns the round as a dict (the fields of :class:`LoopRound`).
    """
    from engine.assist.prelabel import prelabel_job
    from engine.models.registry import get_family

    try:
        spec = get_family(family)
    except ValueError as exc:
        raise BadInput(str(family), "family", str(exc)) from None
    cfg = round_config(family, device, config)
    folder = loop_folder(project)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / f"round-{int(number)}.ckpt"
    with tempfile.TemporaryDirectory(prefix="round-", dir=folder) as tmp:
        snapshot = Path(tmp) / "done.vbproj"
        counts = training_snapshot(project, snapshot)
        if not counts.get("train"):
            raise BadInput(str(project), "status", "no image of the train split is marked done: label a few "
                           "images, mark them done (Image > Mark done), then start the round")
        trained_on = sum(counts.values())
        yield Log(f"round {number}: training {family} on {counts['train']} train / {counts.get('val', 0)} val "
                  f"done images")
        train_result = yield from spec.train(token, str(snapshot), str(checkpoint), cfg)
    store = ProjectStore(project, readonly=True)
    try:
        ids = next_batch(store, int(batch_size))
    finally:
        store.close()
    summary = {k: v for k, v in (train_result or {}).items() if isinstance(v, (int, float, str))}
    if not ids:
        yield Log(f"round {number}: no new image left to pre-label")
        return asdict(LoopRound(int(number), family, str(checkpoint), f"{family}:{checkpoint.stem}", [], trained_on,
                                0, float(summary.get("seconds", 0.0)), extra={"train": summary}))
    yield Log(f"round {number}: pre-labelling {len(ids)} new image(s)")
    pre = yield from prelabel_job(token, str(checkpoint), project, ids, score_threshold, device, sink, snap)
    return asdict(LoopRound(int(number), family, str(checkpoint), pre["source"], ids, trained_on, pre["proposals"],
                            float(summary.get("seconds", 0.0)), extra={"train": summary, "skipped": pre["skipped"]}))
