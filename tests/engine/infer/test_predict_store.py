"""`visionbench predict --project P` changes the project only as `--store` says.

A user who asks for a results file (`--coco-results`, `--masks-out`) gets the file and a project
that is byte-for-byte what it was; with no output asked for, predictions become proposals to
review (never ground truth); ground truth only with `--store truth`. The JSON summary says what
went where. The model is an untrained tiny Mask R-CNN (plenty of scored detections on 128 px).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from engine import cli
from engine.annotations.store import ProjectStore
from engine.data.truth import accepted, ground_truth, is_proposal
from engine.demo.shapes import build_shapes

from .tiny_models import rcnn_checkpoint


# one intra-op thread: two spin against each other on a shared 2-core machine (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return str(rcnn_checkpoint(tmp_path_factory.mktemp("store_ckpt") / "tiny.ckpt"))


@pytest.fixture(scope="module")
def shapes_src(tmp_path_factory) -> Path:
    return build_shapes(tmp_path_factory.mktemp("store_shapes"), n_images=4, seed=3)


@pytest.fixture
def project(shapes_src, tmp_path) -> Path:
    shutil.copytree(shapes_src.parent, tmp_path / "p")
    return tmp_path / "p" / shapes_src.name


def dump(project: Path) -> list[str]:
    """The whole database as SQL text (sqlite3's iterdump), read without writing anything."""
    con = sqlite3.connect(f"file:{project}?mode=ro", uri=True)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def fingerprint(project: Path) -> tuple:
    """The database dump, the project file's bytes and every file of the project's folder."""
    files = sorted((p.relative_to(project.parent).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                   for p in project.parent.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm")))
    return dump(project), files


def annotations(project: Path) -> dict[int, object]:
    with ProjectStore(project, readonly=True) as s:
        return {a.id: a for anns in s.all_annotations().values() for a in anns}


def predict(capsys, *argv) -> dict:
    capsys.readouterr()
    assert cli.main(["predict", *map(str, argv), "--device", "cpu"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_coco_results_and_mask_pngs_leave_the_project_byte_for_byte_unchanged(ckpt, project, tmp_path, capsys):
    before = fingerprint(project)
    results = tmp_path / "results.json"
    summary = predict(capsys, ckpt, "--project", project, "--coco-results", results, "--masks-out", tmp_path / "m")
    # the results are there: one entry per object, which the project would keep as a box and a mask
    assert 2 * len(json.loads(results.read_text())) == summary["annotations"] > 0
    assert len(list((tmp_path / "m").rglob("*.png"))) == summary["images"] == 4
    assert (summary["store"], summary["stored"], summary["project"]) == ("none", 0, None)
    assert fingerprint(project) == before


def test_store_proposals_adds_only_proposals_and_keeps_everything_else(ckpt, project, tmp_path, capsys):
    before = annotations(project)
    summary = predict(capsys, ckpt, "--project", project, "--store", "proposals",
                      "--coco-results", tmp_path / "r.json")
    after = annotations(project)
    assert {i: after[i] for i in before} == before  # nothing old changed or went
    new = [a for i, a in after.items() if i not in before]
    assert len(new) == summary["stored"] == summary["annotations"] > 0
    assert all(is_proposal(a) and a.source == "maskrcnn:tiny" and 0 < a.score <= 1 for a in new)
    assert sorted(ground_truth(after.values()), key=lambda a: a.id) == sorted(before.values(), key=lambda a: a.id)
    assert (summary["store"], summary["project"]) == ("proposals", str(project))

    # no output asked for: proposals again, and they replace this model's unreviewed ones
    again = predict(capsys, ckpt, "--project", project)
    assert again["store"] == "proposals" and again["replaced"] == summary["stored"]
    assert len(annotations(project)) == len(after)


def test_ground_truth_only_when_asked_and_accepted_proposals_survive_a_rerun(ckpt, project, capsys):
    before = annotations(project)
    truth = predict(capsys, ckpt, "--project", project, "--split", "train", "--store", "truth")
    stored = [a for i, a in annotations(project).items() if i not in before]
    assert len(stored) == truth["stored"] > 0 and truth["store"] == "truth"
    # ground truth as accepted proposals are: no proposal mark, the model's score kept aside
    assert all(not is_proposal(a) and a.score is None and 0 < a.attributes["model_score"] <= 1 for a in stored)

    proposals = predict(capsys, ckpt, "--project", project, "--split", "train")
    assert proposals["replaced"] == 0  # proposals never replace ground truth
    with ProjectStore(project) as s:  # the user accepts one proposal in the workbench
        first = next(a for i, a in annotations(project).items() if is_proposal(a))
        s.update_annotation(accepted(first))
    rerun = predict(capsys, ckpt, "--project", project, "--split", "train")
    assert rerun["replaced"] == proposals["stored"] - 1  # the accepted one is the user's now
    assert not is_proposal(annotations(project)[first.id])

    again = predict(capsys, ckpt, "--project", project, "--split", "train", "--store", "truth")
    # truth replaces every earlier prediction of this model: its truth, its proposals, the accepted one
    assert again["replaced"] == truth["stored"] + rerun["stored"] + 1
    assert len(annotations(project)) == len(before) + again["stored"]


@pytest.mark.parametrize("argv, says", [
    (["--as-proposals", "--store", "truth"], "--as-proposals contradicts --store truth"),
    (["--out", "o"], "--out is for IMAGE|DIR|GLOB"),
    (["x.png", "--out", "o"], "not both"),
    (["--store", "none", "--split", "nope"], "invalid choice"),
    (["--score-threshold", "1.5"], "outside 0..1"),
    (["--max-detections", "0"], "less than 1"),
])
def test_contradictions_are_usage_errors_and_change_nothing(ckpt, project, capsys, argv, says):
    before = fingerprint(project)
    capsys.readouterr()
    assert cli.main(["predict", ckpt, "--project", str(project), *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert fingerprint(project) == before


def test_as_proposals_still_works_for_one_release_with_a_note(ckpt, project, capsys):
    capsys.readouterr()
    assert cli.main(["predict", ckpt, "--project", str(project), "--as-proposals", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "--as-proposals is deprecated" in captured.err and "--store proposals" in captured.err
    assert json.loads(captured.out)["store"] == "proposals"
    assert all(is_proposal(a) for a in annotations(project).values() if a.source == "maskrcnn:tiny")
