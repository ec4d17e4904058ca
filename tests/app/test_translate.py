"""Models > Translate with…: an image-to-image checkpoint turns the current image (or its masks) into a
new image of the project, in the background; a file that is no such model gives a message, not a crash."""
import cv2
import pytest

from engine.demo.shapes import build_shapes
from engine.jobs import Job, run_job_sync
from engine.models.registry import get_family
from tests.app.test_workbench_window import open_window

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"size": 32, "width": 4, "depth": 3, "dropout": 1, "ndf": 4, "n_layers": 2, "batch_size": 2, "val_limit": 2,
        "preview_every": 0, "epoch_size": 0, "max_seconds": None, "max_steps": 2, "device": "cpu"}


def _train(project, out, pairs):
    spec = get_family("pix2pix")
    outcome = run_job_sync(Job("train", spec.train, store_path=str(project), out=str(out),
                               config={**spec.preset("cpu"), **TINY, "pairs": pairs}))
    assert outcome.state == "finished", outcome.error
    return out


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return build_shapes(tmp_path_factory.mktemp("shapes"), n_images=6, seed=2)


@pytest.mark.parametrize("pairs", ["labels2photo", "deblur"])
def test_translate_adds_the_result_as_a_new_image_and_opens_it(shapes, tmp_path, qtbot, pairs):
    ckpt = _train(shapes, tmp_path / f"{pairs}.ckpt", pairs)
    w = open_window(qtbot, shapes)
    source = w.controller.image
    before = len(w.store.images())
    job = w.translate.translate(ckpt)
    assert job is not None and w.translate.busy()
    qtbot.waitUntil(lambda: not w.translate.busy(), timeout=60000)
    result = w.translate.last_result
    assert result["input"] == ("masks" if pairs == "labels2photo" else "pixels")
    assert len(w.store.images()) == before + 1
    new = w.store.image(result["image_id"])
    assert new.path.startswith("translated/") and (new.width, new.height) == (source.width, source.height)
    assert new.split == source.split
    assert cv2.imread(str(w.store.image_path(new))).shape == (source.height, source.width, 3)
    assert w.controller.image.id == new.id
    w.close()


def test_a_file_that_is_no_image_to_image_model_gives_a_message(shapes, tmp_path, qtbot):
    bogus = tmp_path / "notes.ckpt"
    bogus.write_text("not a model")
    w = open_window(qtbot, shapes)
    w.translate.translate(bogus)
    qtbot.waitUntil(lambda: not w.translate.busy(), timeout=30000)
    assert w.last_error_box is not None and "notes.ckpt" in w.last_error_box.text() + w.last_error_box.informativeText()
    w.close()


def test_predict_in_the_train_panel_shows_input_and_output_of_an_image_to_image_model(shapes, tmp_path):
    from engine.jobs import Preview
    from engine.infer.run import predict_image_job

    ckpt = _train(shapes, tmp_path / "gray.ckpt", "gray2color")
    previews = []
    outcome = run_job_sync(Job("predict", predict_image_job, checkpoint=str(ckpt), store_path=str(shapes),
                               image_id=1, device="cpu"), lambda e: previews.append(e) if isinstance(e, Preview) else 0)
    assert outcome.state == "finished" and outcome.result == []
    [row] = previews
    assert row.kind == "image_row" and row.data["titles"] == ["input", "output"]
    assert row.data["images"][1].shape == (128, 128, 3)
