"""Issue 5's bad input for detectors, through the command line a user types.

Each case: `visionbench predict|eval FILE --project P` exits 2, stderr names the file and the
field, no traceback, and the project is unchanged (rows and files, compared before/after):
an ONNX file that is not a detector, a checkpoint trained for other categories, a truncated
checkpoint, an image the model cannot take (complex pixels, 5 channels). Image modes with
a clear meaning (RGBA PNG, 16-bit, grey + alpha) are converted and predicted instead.

The detector is an untrained tiny Mask R-CNN (random heads give plenty of scored candidates on
64 px inputs): the tests are about what reaches the project, not about accuracy.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import tifffile
import torch
from onnx import TensorProto, helper
from PIL import Image

from engine import cli
from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore
from engine.demo.shapes import build_shapes
from engine.infer.run import read_model_image
from engine.models.checkpoint import save_checkpoint
from engine.models.rcnn import build_rcnn

TINY_RCNN = {
    "pretrained": False, "fpn_channels": 16, "min_size": 64, "max_size": 96,
    "anchor_sizes": [[16], [32], [64], [128]], "representation_size": 32, "mask_head_channels": 8,
    "rpn_pre_nms_top_n_test": 100, "rpn_post_nms_top_n_test": 50,
}
CLASSES = ["circle", "rectangle", "triangle"]


# one intra-op thread: two spin against each other on a shared 2-core machine (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_rcnn(dict(TINY_RCNN), len(CLASSES), masks=True)
    return save_checkpoint(tmp_path_factory.mktemp("det_ckpt") / "tiny.ckpt", model.state_dict(),
                           {"family": "maskrcnn", "classes": CLASSES, "config": dict(TINY_RCNN), "metrics": {}})


@pytest.fixture(scope="module")
def shapes_src(tmp_path_factory) -> Path:
    return build_shapes(tmp_path_factory.mktemp("det_shapes"), n_images=5, seed=3)


@pytest.fixture
def project(shapes_src, tmp_path) -> Path:
    """A fresh copy of the tiny shapes project (5 images of 128 px, one in val)."""
    shutil.copytree(shapes_src.parent, tmp_path / "p")
    for lock in (tmp_path / "p").glob("*.lock"):
        lock.unlink()
    return tmp_path / "p" / shapes_src.name


def snapshot(path: Path) -> tuple:
    """Everything a user could see of the project: rows (with geometry and source) and its files."""
    with ProjectStore(path, readonly=True) as s:
        rows = (tuple(s.images()), tuple(s.categories()),
                tuple(sorted((a.id, a.image_id, a.category_id, a.source, repr(a.geometry))
                             for anns in s.all_annotations().values() for a in anns)))
    files = sorted(p.relative_to(path.parent).as_posix() for p in path.parent.rglob("*")
                   if not p.name.endswith(("-wal", "-shm", ".lock")))
    return rows, files


def refused(capsys, argv: list[str], file: str, field: str) -> str:
    """Run the CLI; assert exit 2 and one stderr line naming ``file`` and ``field``."""
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert any(file in line and field in line for line in err.splitlines()), err
    assert "Traceback" not in err and "internal error" not in err
    return err


def _onnx(path: Path, out_shape: list[int], metadata: dict | None = None, value: np.ndarray | None = None) -> Path:
    """An ONNX graph with one [1, 3, 64, 64] image input and a constant output."""
    value = np.zeros(out_shape, np.float32) if value is None else value.astype(np.float32)
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(value.shape))
    const = helper.make_node("Constant", [], ["fixed"], value=helper.make_tensor(
        "v", TensorProto.FLOAT, value.shape, value.ravel()))
    graph = helper.make_graph([const, helper.make_node("Identity", ["fixed"], ["output0"])], "g", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.save(model, str(path))
    return path


# ---- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["predict", "eval"])
def test_a_checkpoint_for_other_categories_is_refused_and_no_category_is_created(ckpt, tmp_path, capsys, command):
    other = tmp_path / "other" / "o.vbproj"
    other.parent.mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(other.parent / "a.png")
    with ProjectStore.create(other) as s:
        s.add_category("cat")
        s.add_category("circle")  # one shared name is not enough: the model knows three classes
        s.add_image(other.parent / "a.png", split="val")
    before = snapshot(other)
    err = refused(capsys, [command, str(ckpt), "--project", str(other), "--device", "cpu"], str(ckpt), "classes")
    assert "rectangle" in err and "cat" in err  # which classes are missing, what the project has
    assert snapshot(other) == before


def test_a_truncated_checkpoint_is_refused(ckpt, project, tmp_path, capsys):
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(ckpt.read_bytes()[:4000])
    before = snapshot(project)
    refused(capsys, ["predict", str(bad), "--project", str(project), "--device", "cpu"], str(bad), "checkpoint")
    refused(capsys, ["eval", str(bad), "--project", str(project), "--device", "cpu"], str(bad), "checkpoint")
    assert snapshot(project) == before


@pytest.mark.parametrize("shape, metadata, why", [
    ([1, 1000], None, "shape"),                                  # an ImageNet classifier
    ([1, 7, 8400], {"task": "segment", "names": "{0: 'circle'}"}, "segment"),  # a YOLO segmentation export
])
def test_an_onnx_file_that_is_not_a_detector_is_refused(project, tmp_path, capsys, shape, metadata, why):
    model = _onnx(tmp_path / "not_a_detector.onnx", shape, metadata)
    before = snapshot(project)
    err = refused(capsys, ["predict", str(model), "--project", str(project), "--device", "cpu"], str(model),
                  "onnx model")
    assert why in err
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not protobuf at all")
    refused(capsys, ["eval", str(garbage), "--project", str(project)], str(garbage), "onnx model")
    assert snapshot(project) == before


@pytest.mark.parametrize("kind", ["complex", "channels"])
def test_an_image_the_model_cannot_take_rolls_back_the_whole_predict(ckpt, project, capsys, tmp_path, kind):
    folder = project.parent
    bad = folder / f"zz_{kind}.tif"
    if kind == "complex":
        tifffile.imwrite(bad, (np.ones((40, 40)) + 1j).astype(np.complex64))
    else:
        tifffile.imwrite(bad, np.zeros((40, 40, 5), np.uint8), planarconfig="contig")  # 5 bands: not RGB
    with ProjectStore(project) as s:
        s.add_image(bad, 40, 40, split="val")  # added last: the good val image is predicted first
    before = snapshot(project)
    masks = tmp_path / "masks"
    refused(capsys, ["predict", str(ckpt), "--project", str(project), "--device", "cpu", "--store", "proposals",
                     "--masks-out", str(masks), "--coco-results", str(tmp_path / "r.json")], bad.name, "image")
    assert snapshot(project) == before  # the good image's predictions were rolled back too
    assert not (tmp_path / "r.json").exists() and list(masks.iterdir()) == []
    refused(capsys, ["eval", str(ckpt), "--project", str(project), "--device", "cpu"], bad.name, "image")


# ---- conversions -----------------------------------------------------------------------------

def test_image_modes_with_a_clear_meaning_are_converted(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (12, 16, 3), np.uint8)
    Image.fromarray(np.dstack([rgb, np.full((12, 16), 7, np.uint8)])).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_model_image(tmp_path / "rgba.png"), rgb)  # alpha dropped

    grey16 = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300
    cv_path = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(cv_path)
    out = read_model_image(cv_path)
    assert out.dtype == np.uint8 and out.shape == (12, 16, 3)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255 and (out[..., 0] == out[..., 2]).all()

    two = np.dstack([grey16, np.full_like(grey16, 5)])  # grey + an extra sample in a TIFF
    tifffile.imwrite(tmp_path / "two.tif", two, photometric="minisblack", planarconfig="contig")
    grey = read_model_image(tmp_path / "two.tif")
    assert grey.shape == (12, 16, 3) and (grey[..., 0] == grey[..., 2]).all()
    assert (np.diff(grey[..., 0].astype(int).ravel()) >= 0).all() and grey.max() > grey.min()  # the grey ramp

    planar = np.moveaxis(rgb, -1, 0).copy()  # samples first, as a planar TIFF holds them
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_model_image(tmp_path / "planar.tif"), rgb)

    tifffile.imwrite(tmp_path / "five.tif", np.zeros((12, 16, 5), np.uint8), planarconfig="contig")
    with pytest.raises(BadInput, match=r"five\.tif: image: .*channels"):
        read_model_image(tmp_path / "five.tif")


def test_converted_images_are_predicted_and_stored(ckpt, project, capsys):
    folder = project.parent
    rgb = np.asarray(Image.open(next(folder.glob("shapes/*.png"))).convert("RGB"))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])).save(folder / "rgba.png")
    tifffile.imwrite(folder / "deep.tif", rgb[..., 0].astype(np.uint16) * 257)
    with ProjectStore(project) as s:
        ids = [s.add_image(folder / "rgba.png", split="test").id, s.add_image(folder / "deep.tif", split="test").id]
    capsys.readouterr()
    assert cli.main(["predict", str(ckpt), "--project", str(project), "--split", "test", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 2 and summary["annotations"] > 0
    with ProjectStore(project, readonly=True) as s:
        assert all(any(a.source == "maskrcnn:tiny" for a in s.annotations(i)) for i in ids)
