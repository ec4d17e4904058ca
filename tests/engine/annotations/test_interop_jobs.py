"""The workbench's import and export run as jobs: read on a worker, store on the caller's thread."""
import json

import pytest

from engine.annotations import ProjectStore
from engine.annotations.interop import (export_job, export_losses, find_annotations, is_nonempty_folder, read_job,
                                        sniff_json, store_bundle)
from engine.jobs import Job, run_job_sync
from engine.jobs.cancel import CancelToken, JobCancelled
from tests.annotated_folders import BOXES, labelme_json, write_image, x_anylabeling_folder


def test_a_folder_from_x_anylabeling_is_found_in_its_three_formats(tmp_path):
    root = x_anylabeling_folder(tmp_path / "demo")
    found = find_annotations(root)
    assert [(f.fmt, f.src, f.files) for f in found] == [("labelme", str(root), 1), ("voc", str(root), 1),
                                                          ("yolo", str(root), 1)]
    assert sniff_json(root / "demo.json") == "labelme"


@pytest.mark.parametrize("fmt", ["labelme", "voc", "yolo"])
def test_each_format_found_beside_the_image_imports_its_boxes(tmp_path, fmt):
    root = x_anylabeling_folder(tmp_path / "demo")
    outcome = run_job_sync(Job("read", read_job, fmt=fmt, src=str(root)))
    assert outcome.state == "finished", outcome.error
    bundle = outcome.result
    assert bundle.problems == []
    with ProjectStore.create(tmp_path / "p.vbproj") as store:
        report = store_bundle(store, fmt, bundle)
        assert report.annotations_added == len(BOXES)
        [rec] = store.images()
        names = {c.id: c.name for c in store.categories()}
        got = sorted((names[a.category_id], *(round(v) for v in (a.geometry.x1, a.geometry.y1)))
                     for a in store.annotations(rec.id))
        assert got == sorted((lab, x1, y1) for lab, x1, y1, _, _ in BOXES)


def test_problems_are_listed_and_the_valid_part_still_imports(tmp_path):
    src = tmp_path / "lm"
    write_image(src / "a.png")
    labelme_json(src / "a.json", "a.png")
    write_image(src / "b.png")
    doc = json.loads(labelme_json(src / "b.json", "b.png").read_text())
    doc["shapes"][1]["points"] = [[1, 2]]  # a rectangle needs two points
    (src / "b.json").write_text(json.dumps(doc))
    outcome = run_job_sync(Job("read", read_job, fmt="labelme", src=str(src)))
    bundle = outcome.result
    assert len(bundle.problems) == 1
    assert bundle.problems[0].file.endswith("b.json") and "shapes[1]" in bundle.problems[0].field
    with ProjectStore.create(tmp_path / "p.vbproj") as store:
        report = store_bundle(store, "labelme", bundle)
        assert report.annotations_added == 2 * len(BOXES) - 1 and len(report.skipped) == 1


def test_a_missing_source_fails_the_job_naming_it(tmp_path):
    outcome = run_job_sync(Job("read", read_job, fmt="voc", src=str(tmp_path / "nope")))
    assert outcome.state == "failed" and "nope" in outcome.error and "source" in outcome.error


def test_export_job_reports_progress_and_what_the_format_could_not_hold(tmp_path):
    root = x_anylabeling_folder(tmp_path / "demo")
    project = tmp_path / "p.vbproj"
    with ProjectStore.create(project) as store:
        store_bundle(store, "voc", run_job_sync(Job("r", read_job, fmt="voc", src=str(root))).result)
        from engine.annotations import Annotation, Point
        [rec] = store.images()
        store.add_annotation(Annotation(rec.id, store.categories()[0].id, Point(3, 3)))
    events = []
    outcome = run_job_sync(Job("export", export_job, project=str(project), fmt="coco", dst=str(tmp_path / "out")),
                           on_event=events.append)
    assert outcome.state == "finished", outcome.error
    assert events and events[-1].step == events[-1].total
    assert outcome.result["annotations"] == len(BOXES)
    assert any("1 point" in line for line in export_losses(outcome.result))
    assert is_nonempty_folder(tmp_path / "out") and not is_nonempty_folder(tmp_path / "none")


def test_a_cancelled_read_stops_at_its_next_report(tmp_path):
    src = tmp_path / "lm"
    for i in range(30):
        write_image(src / f"{i}.png")
        labelme_json(src / f"{i}.json", f"{i}.png")
    token = CancelToken()
    gen = read_job(token, fmt="labelme", src=str(src))
    next(gen)
    token.cancel()
    with pytest.raises(JobCancelled):
        for _ in gen:
            pass
