"""Fast style: a transformer network learns one style on a project's images, then one forward
pass stylises any image; `visionbench train faststyle` and `predict CKPT --project P --out DIR`."""
import json

import cv2
import numpy as np
import pytest
import skimage.data

from engine import cli
from engine.annotations.store import ProjectStore
from engine.infer.faststyle_predictor import FastStylePredictor
from engine.models.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"width": 4, "residual_blocks": 1, "crop": 32, "batch_size": 2, "epochs": 3, "steps_per_epoch": 1,
        "max_seconds": 0, "preview_every": 2, "val_images": 2, "network": "lite0"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    project = folder / "photos.vbproj"
    with ProjectStore(project, create=True) as store:
        for k, name in enumerate(("astronaut", "coffee", "chelsea", "rocket")):
            path = folder / f"{name}.png"
            rgb = cv2.resize(getattr(skimage.data, name)(), (64, 48))
            cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            store.add_image(path, split="val" if k == 3 else "train")
    return project


def test_train_faststyle_from_the_command_line_then_stylise_the_project(photos, tmp_path, capsys):
    ckpt = tmp_path / "gravel.ckpt"
    code = cli.main(["train", "faststyle", "--project", str(photos), "--out", str(ckpt), "--style", "gravel",
                     "--config", json.dumps(TINY), "--previews", str(tmp_path / "previews")])
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["family"] == "faststyle" and result["steps"] == 3
    state, meta = load_checkpoint(ckpt)
    assert meta["style"] == "gravel" and "Lite0" in meta["network"]
    assert (tmp_path / "previews" / "stylised.png").is_file()

    predictor = FastStylePredictor(ckpt, "cpu")
    out = predictor.stylise(skimage.data.astronaut()[:37, :53])  # any size, not a multiple of 4
    assert out.shape == (37, 53, 3) and out.dtype == np.uint8

    code = cli.main(["predict", str(ckpt), "--project", str(photos), "--out", str(tmp_path / "styled")])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 4
    assert sorted(p.name for p in (tmp_path / "styled").iterdir()) == [
        "astronaut.png", "chelsea.png", "coffee.png", "rocket.png"]
    assert cv2.imread(str(tmp_path / "styled" / "coffee.png")).shape == (48, 64, 3)


def test_training_lowers_the_perceptual_loss(photos, tmp_path):
    from engine.jobs.cancel import CancelToken
    from engine.jobs.events import Metrics
    from engine.models.registry import get_family
    from engine.train.run import drive

    spec = get_family("faststyle")
    config = {**spec.preset("cpu"), **TINY, "width": 8, "crop": 64, "epochs": 1, "steps_per_epoch": 80,
              "lr": 0.003, "style": "gravel"}
    events = []
    drive(spec.train(CancelToken(), str(photos), str(tmp_path / "g.ckpt"), config), events.append)
    losses = [e.values["loss"] for e in events if isinstance(e, Metrics) and "loss" in e.values]
    assert len(losses) == 80
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15])


def test_a_missing_style_file_is_refused_naming_it_and_the_project_is_unchanged(photos, tmp_path, capsys):
    before = photos.read_bytes()
    code = cli.main(["train", "faststyle", "--project", str(photos), "--out", str(tmp_path / "x.ckpt"),
                     "--style", str(tmp_path / "nowhere.png"), "--config", json.dumps(TINY)])
    assert code == 2
    assert "nowhere.png" in capsys.readouterr().err
    assert photos.read_bytes() == before and not (tmp_path / "x.ckpt").exists()


def test_a_fast_style_network_exports_to_onnx(photos, tmp_path, capsys):
    import onnxruntime as ort
    import torch

    from engine.infer.deploy import deployable, export_model

    ckpt = tmp_path / "fs.ckpt"
    code = cli.main(["train", "faststyle", "--project", str(photos), "--out", str(ckpt), "--style", "gravel",
                     "--config", json.dumps(TINY)])
    assert code == 0, capsys.readouterr().err
    export_model(ckpt, "onnx", tmp_path / "fs.onnx")
    d = deployable(ckpt)
    with torch.no_grad():
        ref = d.module(d.example).numpy()
    (got,) = ort.InferenceSession(str(tmp_path / "fs.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"image": d.example.numpy()})
    assert np.abs(got - ref).max() < 1e-3


def test_a_checkpoint_of_an_older_network_version_is_refused_naming_the_file(tmp_path):
    from engine.annotations.errors import BadInput
    from engine.models.checkpoint import save_checkpoint
    from engine.models.style import build_transformer

    config = {"width": 4, "residual_blocks": 1}
    old = tmp_path / "old.ckpt"  # written before the version was recorded: same weights, another output
    save_checkpoint(old, build_transformer(config).state_dict(),
                    {"family": "faststyle", "classes": [], "config": config, "metrics": {}, "style": "brick"})
    with pytest.raises(BadInput) as err:
        FastStylePredictor(old, "cpu")
    assert "old.ckpt" in str(err.value) and "train it again" in str(err.value)


def test_the_network_starts_as_the_identity_and_its_eval_output_stays_in_range():
    import torch

    from engine.models.style import TransformerNet, out_of_range

    net = TransformerNet(4, 1)
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
        x = torch.rand(1, 3, 30, 41)
        assert torch.allclose(net(x), x)  # the colour mix starts as the identity
        net.body[-1].bias.fill_(2.0)
        assert out_of_range(net(x)) > 0.5  # training sees (and penalises) what lies outside [0, 1]
        net.eval()
        y = net(x)
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert float(out_of_range(torch.tensor([[-0.5, 0.5, 1.5]]))) == pytest.approx((0.25 + 0.25) / 3)


def test_the_colour_transfer_gives_the_photos_the_styles_colour_mean_and_covariance():
    import torch

    from engine.models.style import colour_transfer

    g = torch.Generator().manual_seed(1)
    photos = torch.rand(6000, 3, generator=g) @ torch.tensor([[0.9, 0.2, 0.0], [0.1, 0.5, 0.1], [0.3, 0.0, 0.7]])
    for style in (torch.rand(5000, 3, generator=g) @ torch.tensor([[0.5, 0.2, 0.0], [0.0, 0.3, 0.1], [0.1, 0.0, 0.2]]),
                  (torch.rand(5000, 1, generator=g) * 0.4 + 0.3).expand(5000, 3)):  # a grey texture
        matrix, bias = colour_transfer(photos, style)
        mapped = photos @ matrix.T + bias
        assert torch.allclose(mapped.mean(0), style.mean(0), atol=1e-4)
        assert torch.allclose(torch.cov(mapped.T), torch.cov(style.T), atol=3e-4)
    # grey style: grey pixels (what is left of the colours is the regularisation eps, std 0.01)
    chroma = (mapped - mapped.mean(1, keepdim=True)).std()
    assert float(chroma) < 0.1 * float((photos - photos.mean(1, keepdim=True)).std())
