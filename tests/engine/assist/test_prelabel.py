"""Pre-labelling a split: a real (tiny, untrained) YOLO proposes shapes; nothing is written by the job."""
import queue

from engine.annotations import Annotation, Box, ProjectStore
from engine.assist.prelabel import images_to_prelabel, prelabel_job, replaced_by_run
from engine.assist.review import (ReviewCounts, at_or_above, edited_proposal, images_with_proposals,
                                  step_to_proposals)
from engine.data.truth import accepted, is_proposal
from engine.jobs import Job, run_job_sync
from tests.app.workbench_project import make_project
from tests.engine.infer.tiny_models import yolo_checkpoint


def test_prelabel_job_puts_proposals_per_image_and_leaves_the_project_alone(tmp_path):
    project = make_project(tmp_path, n_images=3, size=(64, 64))
    ckpt = yolo_checkpoint(tmp_path / "y.ckpt", classes=["cat", "dog"])
    with ProjectStore(project) as store:
        first, *rest = images_to_prelabel(store, split="train", status="new")
        store.set_status(first, "done")
        ids = images_to_prelabel(store, status="new")
        assert ids == rest
    before = project.read_bytes()
    sink = queue.SimpleQueue()
    events = []
    outcome = run_job_sync(Job("pre-label", prelabel_job, checkpoint=str(ckpt), project=str(project), image_ids=ids,
                               score_threshold=0.0, device="cpu", sink=sink), on_event=events.append)
    assert outcome.state == "finished", outcome.traceback
    got = [sink.get_nowait() for _ in range(sink.qsize())]
    assert [image_id for image_id, _ in got] == ids
    anns = [a for _, batch in got for a in batch]
    assert anns and all(is_proposal(a) and a.source == "yolo:y" for a in anns)
    assert outcome.result["proposals"] == len(anns) and outcome.result["images"] == 2
    assert project.read_bytes() == before
    assert events[-1].step == events[-1].total == 2


def test_review_helpers_follow_the_ground_truth_rule(tmp_path):
    project = make_project(tmp_path, n_images=4)
    with ProjectStore(project) as store:
        ids = [r.id for r in store.images()]
        p = dict(source="yolo:a", attributes={"proposal": True})
        store.add_annotations([Annotation(ids[1], 1, Box(1, 1, 5, 5), score=0.9, **p),
                               Annotation(ids[1], 1, Box(1, 1, 6, 6), score=0.3, **p),
                               Annotation(ids[3], 2, Box(2, 2, 8, 8), score=0.5, **p),
                               Annotation(ids[2], 1, Box(1, 1, 5, 5), attributes={"note": "proposal?"})])
        with_props = images_with_proposals(store)
        assert with_props == {ids[1], ids[3]}
        assert step_to_proposals(ids, ids[0], +1, with_props) == ids[1]
        assert step_to_proposals(ids, ids[1], +1, with_props) == ids[3]
        assert step_to_proposals(ids, ids[3], +1, with_props) is None
        assert step_to_proposals(ids, ids[3], -1, with_props) == ids[1]
        anns = store.annotations(ids[1])
        assert [a.score for a in at_or_above(anns, 0.5)] == [0.9]
        assert replaced_by_run(anns[0], "yolo:a") and not replaced_by_run(accepted(anns[0]), "yolo:a")
    moved = edited_proposal(anns[0], anns[0].with_(geometry=Box(2, 2, 5, 5)))
    assert moved.attributes["edited"] and is_proposal(moved)
    assert edited_proposal(anns[0], anns[0].with_(hidden=True)).attributes.get("edited") is None
    counts = ReviewCounts()
    counts.count_accepted([accepted(moved), accepted(anns[1])])
    assert counts.as_dict() == {"accepted": 1, "edited": 1, "rejected": 0}
