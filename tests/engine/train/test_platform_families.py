"""A family of each kind, registered from a test module, trains, predicts and shows its previews
through the command line: the platform needs no edit for a new family."""
import json

import numpy as np
import pytest

from engine import cli
from engine.annotations.store import ProjectStore
from engine.models import registry
from engine.models.checkpoint import load_checkpoint
from tests.engine.train.toy_families import toy_specs


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from engine.demo.shapes import build_shapes

    return build_shapes(tmp_path_factory.mktemp("toy_shapes"), n_images=10, seed=3)


@pytest.fixture
def toys():
    specs = toy_specs()
    for spec in specs:
        registry.register_family(spec)
    yield {s.kind: s for s in specs}
    for spec in specs:
        registry.unregister_family(spec.name)


@pytest.mark.parametrize("kind", registry.KINDS)
def test_a_family_of_each_kind_trains_predicts_and_previews_through_the_cli(kind, toys, project, tmp_path, capsys):
    name = toys[kind].name
    ckpt, views = tmp_path / f"{name}.ckpt", tmp_path / "views"
    assert cli.main(["train", name, "--project", str(project), "--out", str(ckpt), "--previews", str(views)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["family"] == name and result["metric"] == "score" and result["steps"] == result["epochs"] * (
        1 if kind == "optimisation" else 2)
    # under a budget (the preset has one) the untrained model is validated first (epoch 0)
    assert 0 < result["best"]["score"] <= 1 and [h["epoch"] for h in result["history"]] == [0, 1, 2]
    _, meta = load_checkpoint(ckpt)
    assert meta["family"] == name and meta["kind"] == kind and meta["metric"] == "score"
    pngs = sorted(p.name for p in views.glob("*.png"))
    expected = {"segmentation": ["toy_classes.png", "toy_heat.png"], "detection": ["toy_detections.png"],
                "instance": ["toy_detections.png"], "embedding": ["toy_embedding.png"],
                "image2image": ["toy_pair.png"], "optimisation": ["toy_gram.png", "toy_losses.png"]}[kind]
    assert pngs == expected
    import cv2

    for png in views.glob("*.png"):
        picture = cv2.imread(str(png))
        assert picture is not None and picture.ndim == 3 and picture.std() > 0  # a real picture, not blank

    before = ProjectStore(project, readonly=True)
    n_before = sum(len(before.annotations(r.id)) for r in before.images())
    before.close()
    assert cli.main(["predict", str(ckpt), "--project", str(project), "--split", "val"]) == 0
    summary = json.loads(capsys.readouterr().out)
    store = ProjectStore(project)
    try:
        added = [a for r in store.images() for a in store.annotations(r.id) if a.source.startswith(name)]
        n_val = len(store.images(split="val"))
        assert summary["images"] == n_val
        if kind in ("segmentation", "detection", "instance"):
            assert len(added) == n_val and all(a.score == 0.75 for a in added)
        else:
            assert added == [] and summary["annotations"] == 0
        for a in added:
            store.delete_annotation(a.id)
        assert sum(len(store.annotations(r.id)) for r in store.images()) == n_before
    finally:
        store.close()


def test_two_optimisers_both_learn_and_the_image_parameter_is_saved(toys, project, tmp_path):
    from engine.jobs import Job, Metrics, run_job_sync

    events = []
    outcome = run_job_sync(Job("t", toys["image2image"].train, store_path=str(project), out=str(tmp_path / "p.ckpt"),
                               config={"epochs": 3, "lr": 0.01}), events.append)
    assert outcome.state == "finished", outcome.error
    terms = [e.values for e in events if isinstance(e, Metrics) and "loss" in e.values]
    assert all("loss_critic" in t for t in terms) and len(terms) == 6
    outcome = run_job_sync(Job("t", toys["optimisation"].train, store_path=str(project), out=str(tmp_path / "o.ckpt"),
                               config={"epochs": 30}))
    assert outcome.state == "finished", outcome.error
    state, meta = load_checkpoint(tmp_path / "o.ckpt")
    assert set(state) == {"picture"} and meta["metrics"]["score"] > outcome.result["history"][0]["score"] - 1e-9
    assert np.isfinite(state["picture"].numpy()).all()
