"""pix2pix on the one loop: two optimisers, live views, and train -> predict -> eval from the command line."""
import json

import cv2
import pytest
import torch

from engine.annotations.store import ProjectStore
from engine.cli import main
from engine.demo.galaxies import build_galaxies
from engine.jobs import Job, Preview, run_job_sync
from engine.jobs.cancel import CancelToken
from engine.models.checkpoint import load_checkpoint
from engine.models.registry import get_family
from engine.train.loop import resolve_config
from engine.train.pix2pix import Pix2PixTrainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"size": 32, "width": 4, "depth": 3, "dropout": 1, "ndf": 4, "n_layers": 2, "batch_size": 2, "val_limit": 4,
        "preview_every": 2, "preview_images": 2, "epoch_size": 0, "max_seconds": None, "epochs": 1}


@pytest.fixture(scope="module")
def galaxies(tmp_path_factory):
    return build_galaxies(tmp_path_factory.mktemp("gal"), n_images=10, seed=1)


def _trainer(project, **config):
    spec = get_family("pix2pix")
    cfg = resolve_config(Pix2PixTrainer, {**spec.preset("cpu"), **TINY, **config, "device": "cpu"})
    trainer = Pix2PixTrainer(cfg, torch.device("cpu"), CancelToken(), str(project))
    list(trainer.setup())
    return trainer


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_g_and_d_are_both_updated_each_by_its_own_optimiser(galaxies):
    trainer = _trainer(galaxies)
    G, D = trainer.model.G, trainer.model.D
    opt_g, opt_d = trainer.optimizers
    assert {id(p) for g in opt_g.param_groups for p in g["params"]} == {id(p) for p in G.parameters()}
    assert {id(p) for g in opt_d.param_groups for p in g["params"]} == {id(p) for p in D.parameters()}
    batch = next(iter(trainer.batches()))
    g0, d0 = _snapshot(G), _snapshot(D)
    values = trainer.step(batch, "step 1")
    assert _changed(g0, G) and _changed(d0, D)
    assert {"loss", "g_gan", "g_l1", "d_loss"} <= set(values)
    # with D's optimiser switched off, one step leaves D's weights as they were: G's update never moves D
    opt_d.step = lambda *a, **k: None
    d1, g1 = _snapshot(D), _snapshot(G)
    trainer.step(batch, "step 2")
    assert not _changed(d1, D) and _changed(g1, G)


def test_training_shows_translations_and_both_patch_maps_and_scores_psnr(galaxies, tmp_path):
    job = Job("train pix2pix", get_family("pix2pix").train, store_path=str(galaxies), out=str(tmp_path / "m.ckpt"),
              config={**get_family("pix2pix").preset("cpu"), **TINY, "device": "cpu"})
    previews = {}
    metrics = set()

    def on_event(e):
        if isinstance(e, Preview):
            previews[e.name] = e
        elif hasattr(e, "values"):
            metrics.update(e.values)

    outcome = run_job_sync(job, on_event)
    assert outcome.state == "finished", outcome.error
    assert previews["translations"].kind == "image_row"
    assert previews["translations"].data["titles"] == ["input", "output", "target"]
    with ProjectStore(galaxies, readonly=True) as store:
        rows = min(2, len(store.images(split="val")))  # up to two validation images, stacked
    assert previews["translations"].data["images"][0].shape == (32 * rows, 32, 3)
    for name in ("D on generated", "D on real"):
        maps = previews[name].data["maps"]
        assert previews[name].kind == "heatmap" and maps.min() >= 0 and maps.max() <= 1
    assert {"g_gan", "g_l1", "d_loss", "val_l1", "val_psnr"} <= metrics
    _, meta = load_checkpoint(tmp_path / "m.ckpt")
    assert meta["family"] == "pix2pix" and meta["pairs"] == "targets" and meta["receptive_field"] == 34
    assert outcome.result["identity"]["psnr"] > 0


def test_train_predict_eval_from_the_command_line(galaxies, tmp_path, capsys):
    ckpt = tmp_path / "g.ckpt"
    config = json.dumps({k: v for k, v in TINY.items() if k != "max_seconds"})
    assert main(["train", "pix2pix", "--project", str(galaxies), "--out", str(ckpt), "--pairs", "denoise",
                 "--config", config, "--device", "cpu"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["pairs"] == "denoise" and trained["receptive_field"] == 34

    assert main(["predict", str(ckpt), "--project", str(galaxies), "--out", str(tmp_path / "out"),
                 "--device", "cpu"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["written"] == 10 == len(list((tmp_path / "out").rglob("*.png")))
    # gray galaxies in, gray galaxies out: a model of gray targets answers in gray
    picture = cv2.imread(str(next((tmp_path / "out").rglob("*.png"))))
    assert (picture[:, :, 0] == picture[:, :, 1]).all() and (picture[:, :, 1] == picture[:, :, 2]).all()

    assert main(["eval", str(ckpt), "--project", str(galaxies), "--split", "val", "--device", "cpu"]) == 0
    scores = json.loads(capsys.readouterr().out)
    for key in ("l1", "psnr", "ssim"):
        assert isinstance(scores[key], float) and isinstance(scores["identity"][key], float)
    assert 0 <= scores["l1"] <= 1 and -1 <= scores["ssim"] <= 1


def test_a_pairs_value_that_does_not_exist_is_a_usage_error(galaxies, tmp_path, capsys):
    assert main(["train", "pix2pix", "--project", str(galaxies), "--out", str(tmp_path / "x.ckpt"),
                 "--pairs", "sketch2cat"]) == 2
    err = capsys.readouterr().err
    assert "--pairs" in err and "labels2photo" in err
    assert main(["train", "pix2pix", "--project", str(galaxies), "--out", str(tmp_path / "x.ckpt"),
                 "--wings", "2"]) == 2
    assert "--wings" in capsys.readouterr().err


def test_colorizing_gray_galaxies_is_refused_naming_a_file(galaxies, tmp_path, capsys):
    assert main(["train", "colorize", "--project", str(galaxies), "--out", str(tmp_path / "c.ckpt"),
                 "--config", json.dumps({k: v for k, v in TINY.items() if k != "max_seconds"})]) == 2
    err = capsys.readouterr().err
    assert "galaxy_0" in err and "gray" in err
    assert not (tmp_path / "c.ckpt").exists()


def test_the_generator_exports_to_onnx_and_translates_like_pytorch(galaxies, tmp_path, capsys):
    import numpy as np
    import onnxruntime as ort

    from engine.infer.deploy import deployable, export_model

    ckpt = tmp_path / "g.ckpt"
    config = json.dumps({k: v for k, v in TINY.items() if k != "max_seconds"})
    assert main(["train", "pix2pix", "--project", str(galaxies), "--out", str(ckpt), "--pairs", "denoise",
                 "--config", config, "--device", "cpu"]) == 0
    capsys.readouterr()
    export_model(ckpt, "onnx", tmp_path / "g.onnx")
    d = deployable(ckpt)
    assert d.meta["pairs"] == "denoise"
    x = d.example
    with torch.no_grad():
        ref = d.module(x).numpy()
    (got,) = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()})
    assert np.abs(got - ref).max() < 1e-3
