"""An export holds ground truth: a user who pre-labelled half a project and exports it gets the
labels they drew or accepted, not the model's unreviewed proposals, and is told how many were left
out; asking for them writes them too."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.annotations.formats import export_from
from engine.annotations.interop import export_losses
from engine.annotations.model import Annotation, Box
from engine.annotations.store import ProjectStore
from engine.data.truth import accepted, as_proposal
from engine.demo import build_demo


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo"), seed=5, n_shapes=6, n_galaxies=1)["shapes"]


@pytest.fixture
def prelabelled(shapes, tmp_path) -> tuple[Path, int, int]:
    """A copy of the shapes project with 3 proposals on a val image and one accepted on a train image."""
    root = tmp_path / "proj"
    shutil.copytree(shapes.parent, root)
    path = root / shapes.name
    with ProjectStore(path) as store:
        val = store.images(split="val")[0]
        train = store.images(split="train")[0]
        cat = store.categories()[0].id
        for i in range(3):
            store.add_annotation(as_proposal(Annotation(val.id, cat, Box(2 + i, 2, 12 + i, 12), score=0.5)))
        store.add_annotation(accepted(as_proposal(Annotation(train.id, cat, Box(1, 1, 9, 9), score=0.9))))
        total = sum(len(v) for v in store.all_annotations().values())
    return path, total, 3


@pytest.mark.parametrize("fmt", ["coco", "labelme", "yolo", "voc"])
def test_unreviewed_proposals_stay_out_and_are_counted(prelabelled, tmp_path, fmt):
    path, _, n_proposals = prelabelled
    with ProjectStore(path, readonly=True) as store:
        summary = export_from(store, fmt, tmp_path / "out")
        with_them = export_from(store, fmt, tmp_path / "all", proposals=True)
    assert summary["proposals_left_out"] == n_proposals and with_them["proposals_left_out"] == 0
    assert any("3 unreviewed model proposal(s) left out" in s for s in export_losses(summary))
    if fmt == "coco":
        kept = json.loads((tmp_path / "out" / "annotations.json").read_text())["annotations"]
        every = json.loads((tmp_path / "all" / "annotations.json").read_text())["annotations"]
        assert len(every) - len(kept) == n_proposals
        assert not any(a.get("attributes", {}).get("proposal") for a in kept)


def test_a_split_export_counts_the_proposals_of_that_split_only(prelabelled, tmp_path):
    path, _, n_proposals = prelabelled
    with ProjectStore(path, readonly=True) as store:
        assert export_from(store, "yolo", tmp_path / "t", split="train")["proposals_left_out"] == 0
        assert export_from(store, "yolo", tmp_path / "v", split="val")["proposals_left_out"] == n_proposals


def test_the_cli_leaves_proposals_out_unless_asked(prelabelled, tmp_path, capsys):
    from engine.cli import main

    path, _, n_proposals = prelabelled
    assert main(["export", "coco", str(tmp_path / "a"), "--project", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["proposals_left_out"] == n_proposals
    assert main(["export", "coco", str(tmp_path / "b"), "--project", str(path), "--include-proposals"]) == 0
    assert json.loads(capsys.readouterr().out)["proposals_left_out"] == 0
    assert main(["export", "project", str(tmp_path / "c"), "--project", str(path), "--include-proposals"]) == 2
