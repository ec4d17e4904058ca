"""The label loop on a tiny shapes project: a round trains a (tiny) YOLO on the done images only,
pre-labels the next batch of new images, and what the reviewer did with the proposals is counted
per round when the next round starts."""
import queue

import pytest

from engine.annotations import Box, ProjectStore
from engine.assist.label_loop import (LoopRound, label_loop_round, load_rounds, loop_folder, next_batch,
                                      round_statistics, save_rounds, training_snapshot)
from engine.assist.review import edited_proposal
from engine.data.truth import accepted, is_proposal
from engine.demo.shapes import build_shapes
from engine.jobs import Job, run_job_sync

TINY = {"pretrained": False, "input_size": 64, "head_channels": 16, "batch_size": 4, "epochs": 1,
        "warmup_steps": 1, "max_steps": 2, "cpu_threads": 1}


# one intra-op thread: two spin against each other on a shared 2-core machine (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def half_labelled(tmp_path, n_images=12, done=5):
    """A shapes project whose first ``done`` images are done; the others are new and unlabelled."""
    project = build_shapes(tmp_path, n_images=n_images, seed=4)
    with ProjectStore(project) as store:
        for rec in store.images()[done:]:
            store.set_status(rec.id, "new")
            for a in store.annotations(rec.id):
                store.delete_annotation(a.id)
    return project


def run_round(project, number, sink, batch_size=3):
    outcome = run_job_sync(Job(f"round {number}", label_loop_round, project=str(project), number=number,
                               family="yolo", batch_size=batch_size, score_threshold=0.0, config=TINY,
                               device="cpu", sink=sink))
    assert outcome.state == "finished", outcome.traceback
    return LoopRound(**outcome.result)


def store_proposals(project, sink):
    """What the workbench does with the proposals the job hands over."""
    with ProjectStore(project) as store:
        while not sink.empty():
            _, anns = sink.get_nowait()
            store.add_annotations(anns)


def review(project, rnd):
    """A reviewer: on each image accept the best proposal, move the 2nd one then accept it, reject
    the rest, draw one box by hand and mark the image done."""
    with ProjectStore(project) as store:
        for image_id in rnd.image_ids:
            props = sorted((a for a in store.annotations(image_id) if is_proposal(a)), key=lambda a: -a.score)
            assert len(props) >= 2
            store.update_annotation(accepted(props[0]))
            g = props[1].geometry
            moved = edited_proposal(props[1], props[1].with_(geometry=Box(g.x1 + 1, g.y1, g.x2 + 1, g.y2)))
            store.update_annotation(accepted(moved))
            for a in props[2:]:
                store.delete_annotation(a.id)
            store.add_annotation(props[0].with_(id=None, geometry=Box(1, 1, 9, 9), source="manual", score=None,
                                                attributes={}))
            store.set_status(image_id, "done")


def test_snapshot_holds_only_the_done_images_and_their_ground_truth(tmp_path):
    project = half_labelled(tmp_path / "p", n_images=8, done=3)
    counts = training_snapshot(project, tmp_path / "snap" / "done.vbproj")
    assert sum(counts.values()) == 3
    with ProjectStore(project, readonly=True) as src, ProjectStore(tmp_path / "snap" / "done.vbproj") as snap:
        assert [c.name for c in snap.categories()] == [c.name for c in src.categories()]
        done = src.images(status="done")
        assert [snap.image_path(r) for r in snap.images()] == [src.image_path(r) for r in done]
        assert snap.count_annotations() == sum(src.count_annotations(r.id) for r in done)


def test_two_rounds_with_a_review_between_them(tmp_path):
    project = half_labelled(tmp_path)
    with ProjectStore(project, readonly=True) as store:
        first_batch = next_batch(store, 3)
        trained_first = len(store.images(status="done"))
    sink = queue.SimpleQueue()
    one = run_round(project, 1, sink)
    assert one.image_ids == first_batch and one.trained_on == trained_first
    assert one.proposals > 0 and one.source == "yolo:round-1"
    assert (loop_folder(project) / "round-1.ckpt").is_file()
    assert not list(loop_folder(project).glob("round-*/"))  # the training snapshot is gone
    store_proposals(project, sink)
    with ProjectStore(project, readonly=True) as store:
        assert round_statistics(store, one) == {"accepted": 0, "edited": 0, "rejected": 0, "drawn": 0,
                                                "open": one.proposals}
        assert not set(next_batch(store, 3)) & set(one.image_ids)  # images waiting for review are skipped

    review(project, one)
    with ProjectStore(project, readonly=True) as store:
        one.stats = round_statistics(store, one)
    n = len(one.image_ids)
    assert one.stats == {"accepted": n, "edited": n, "rejected": one.proposals - 2 * n, "drawn": n, "open": 0}
    save_rounds(project, [one])

    two = run_round(project, 2, sink)
    assert two.trained_on == trained_first + n  # the reviewed images train the second round
    assert two.image_ids and not set(two.image_ids) & set(one.image_ids)
    assert two.source == "yolo:round-2"
    save_rounds(project, [one, two])
    assert [(r.number, r.stats) for r in load_rounds(project)] == [(1, one.stats), (2, None)]


def test_a_round_without_done_images_says_what_to_do(tmp_path):
    project = half_labelled(tmp_path, n_images=4, done=0)
    outcome = run_job_sync(Job("round 1", label_loop_round, project=str(project), number=1, config=TINY,
                               device="cpu"))
    assert outcome.state == "failed"
    assert "mark them done" in str(outcome.error)
