"""Train a Siamese embedding on a tiny glyphs project, then verify, evaluate and search with it."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import cli
from engine.annotations import Annotation, Box, ProjectStore
from engine.demo.glyphs import build_glyphs
from engine.jobs.events import Preview
from engine.models.checkpoint import load_checkpoint, save_checkpoint
from engine.train.run import train_command

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"input_size": 32, "p_identities": 4, "k_per_identity": 2, "max_steps": 2, "val_limit": 40,
        "preview_every": 1, "max_seconds": None}


@pytest.fixture(scope="module")
def glyphs(tmp_path_factory):
    return build_glyphs(tmp_path_factory.mktemp("glyphs"), n_identities=12, renderings=3, seed=5)


@pytest.fixture(scope="module")
def trained(glyphs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "siamese.ckpt"
    events = []
    result = train_command("siamese", glyphs, out, device="cpu", config=TINY, progress=events.append)
    return out, result, events


def test_training_writes_an_embedding_checkpoint_with_live_scatter_and_hardest_triplets(trained):
    out, result, events = trained
    _, meta = load_checkpoint(out)
    assert meta["kind"] == "embedding" and meta["family"] == "siamese"
    assert meta["embedding_dim"] == 128 and meta["input_size"] == 32 and meta["tau"] is not None
    for key in ("eer", "roc_auc", "oneshot_acc_20way", "oneshot_acc_5way", "tau"):
        assert key in result["metrics"]
    kinds = {e.name: e.kind for e in events if isinstance(e, Preview)}
    assert kinds == {"embedding": "scatter", "hardest triplets": "image_row"}
    scatter = next(e for e in events if isinstance(e, Preview) and e.kind == "scatter")
    assert scatter.data["points"].shape[1] == 2 and len(set(scatter.data["labels"].tolist())) == 2
    row = next(e for e in events if isinstance(e, Preview) and e.kind == "image_row")
    assert row.data["titles"][:3][0] == "anchor" and row.data["titles"][1].startswith("positive d=")


@pytest.mark.parametrize("loss", ["contrastive", "binary", "semi_hard"])
def test_every_loss_trains_a_step(glyphs, tmp_path, loss):
    config = dict(TINY, max_steps=1, preview_every=0,
                  **({"mining": "semi_hard"} if loss == "semi_hard" else {"loss": loss}))
    result = train_command("siamese", glyphs, tmp_path / "x.ckpt", device="cpu", config=config, progress=False)
    assert result["steps"] == 1 and np.isfinite(result["history"][-1]["eer"])


def _json(capsys, argv):
    capsys.readouterr()
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_eval_gives_the_verification_figures_of_the_validation_identities(trained, glyphs, capsys):
    out, _, _ = trained
    report = _json(capsys, ["eval", str(out), "--project", str(glyphs), "--split", "val"])
    for key in ("eer", "roc_auc", "acc_at_tau", "tau", "oneshot_acc_5way", "oneshot_acc_20way"):
        assert key in report
    assert report["identities"] == 2 and report["items"] == 6  # round(12 * 0.2) identities, 3 renderings


def test_verify_says_same_for_a_picture_and_itself(trained, glyphs, capsys):
    out, _, _ = trained
    a = glyphs.parent / "glyphs" / "glyph_0000_00.png"
    result = _json(capsys, ["verify", str(out), str(a), str(a)])
    assert result["distance"] == pytest.approx(0.0, abs=1e-5) and result["verdict"] == "same"
    b = glyphs.parent / "glyphs" / "glyph_0001_00.png"
    other = _json(capsys, ["verify", str(out), str(a), str(b), "--tau", "0"])
    assert other["distance"] > 0 and other["verdict"] == "different"


def test_search_finds_the_query_first_and_reuses_stored_embeddings(trained, glyphs, capsys, tmp_path):
    out, _, _ = trained
    query = glyphs.parent / "glyphs" / "glyph_0003_01.png"
    first = _json(capsys, ["search", str(out), str(query), "--project", str(glyphs), "-k", "5"])
    assert len(first["results"]) == 5 and first["index"]["embedded"] == 36
    assert first["results"][0]["path"].endswith("glyph_0003_01.png")
    assert first["results"][0]["distance"] == pytest.approx(0.0, abs=1e-3)
    assert [r["distance"] for r in first["results"]] == sorted(r["distance"] for r in first["results"])
    again = _json(capsys, ["search", str(out), str(query), "--project", str(glyphs), "-k", "5"])
    assert again["index"]["embedded"] == 0 and again["results"] == first["results"]
    # an image changed on disk is embedded again, and only it
    changed = glyphs.parent / "glyphs" / "glyph_0011_02.png"
    cv2.imwrite(str(changed), 255 - cv2.imread(str(changed), cv2.IMREAD_GRAYSCALE))
    third = _json(capsys, ["search", str(out), str(query), "--project", str(glyphs), "-k", "5"])
    assert third["index"]["embedded"] == 1


def _error(capsys, argv):
    capsys.readouterr()
    code = cli.main(argv)
    return code, capsys.readouterr().err


def test_an_identity_with_one_image_is_refused_naming_it(tmp_path, capsys):
    project = build_glyphs(tmp_path, n_identities=4, renderings=2, seed=1)
    with ProjectStore(project) as store:
        rec = store.images()[0]
        store.add_annotation(Annotation(rec.id, store.categories()[0].id, Box(1, 1, 20, 20),
                                        attributes={"identity": "lonely"}))
    code, err = _error(capsys, ["train", "siamese", "--project", str(project), "--out", str(tmp_path / "a.ckpt"),
                                "--config", json.dumps(TINY)])
    assert code == 2 and "lonely" in err and "single image" in err and str(project) in err


def test_a_project_with_one_identity_is_refused(tmp_path, capsys):
    project = build_glyphs(tmp_path, n_identities=2, renderings=2, seed=1)
    with ProjectStore(project) as store:
        for anns in store.all_annotations().values():
            for a in anns:
                store.update_annotation(a.with_(attributes={"identity": "everyone"}))
    code, err = _error(capsys, ["train", "siamese", "--project", str(project), "--out", str(tmp_path / "a.ckpt")])
    assert code == 2 and "1 identity found" in err


def test_a_checkpoint_of_another_kind_is_refused(tmp_path, glyphs, capsys):
    other = tmp_path / "unet.ckpt"
    save_checkpoint(other, {}, {"family": "unet", "kind": "segmentation", "classes": ["a"], "config": {},
                                "metrics": {}})
    image = glyphs.parent / "glyphs" / "glyph_0000_00.png"
    for argv in (["verify", str(other), str(image), str(image)],
                 ["search", str(other), str(image), "--project", str(glyphs)]):
        code, err = _error(capsys, argv)
        assert code == 2 and "kind" in err and "segmentation" in err and str(other) in err


def test_predict_with_an_embedding_checkpoint_stores_nothing(trained, glyphs, capsys):
    out, _, _ = trained
    with ProjectStore(glyphs, readonly=True) as store:
        before = store.count_annotations()
    _json(capsys, ["predict", str(out), "--project", str(glyphs), "--split", "val"])
    with ProjectStore(glyphs, readonly=True) as store:
        assert store.count_annotations() == before


def test_the_embedding_exports_to_onnx_and_gives_the_same_embeddings(trained, glyphs, tmp_path):
    import onnxruntime as ort

    from engine.infer.deploy import export_model
    from engine.infer.siamese_predictor import SiamesePredictor

    ckpt, _, _ = trained
    summary = export_model(ckpt, "onnx", tmp_path / "s.onnx")
    assert summary["outputs"] == ["embedding"]
    predictor = SiamesePredictor.from_checkpoint(ckpt, device="cpu")
    pictures = sorted(Path(glyphs).parent.rglob("*.png"))[:3]
    crops = np.stack([predictor.crop(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)) for f in pictures])
    (got,) = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"image": crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0})
    assert np.abs(got - predictor.embed_crops(crops)).max() < 1e-4
