"""A teacher opens Models > Style transfer… on a photo, watches the picture, the curves and the
Gram matrices of a chosen layer, pauses, steps, stops (the picture is kept) and saves the result
into the project; Stylise with… runs a fast-style network on the same photo."""
import cv2
import numpy as np
import pytest
import skimage.data

from app.main_window import MainWindow
from engine.annotations import ProjectStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def window(qtbot, tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    path = root / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(cv2.resize(skimage.data.astronaut(), (96, 96)), cv2.COLOR_RGB2BGR))
    store = ProjectStore.create(root / "p.vbproj")
    store.add_image(path)
    store.close()
    w = MainWindow(ProjectStore(root / "p.vbproj"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    assert w.jobs.shutdown(10.0)


def small(dock, steps):
    dock.size.addItem("tiny (48 px)", 48)
    dock.size.setCurrentIndex(dock.size.count() - 1)
    dock.steps.setValue(steps)
    dock.network.setCurrentText("lite0")


def test_style_transfer_runs_live_and_the_result_goes_into_the_project(window, qtbot):
    window.actions_by_name["style_transfer"].trigger()
    dock = window.style_transfer.dock_widget
    assert window.docks["Style transfer"].isVisible()
    small(dock, 6)
    dock.set_style("gravel")
    job = dock.start()
    assert job is not None and not dock.start_button.isEnabled()
    qtbot.waitUntil(lambda: not dock.busy(), timeout=120_000)
    assert "Lite0" in dock.network_label.text()
    assert dock.picture.has_image() and dock.inputs.has_image()
    assert dock.picture.item.image.shape[:2] == (48, 48)
    assert set(dock.curves.series) == {"loss", "content", "style"}
    assert dock.per_layer.data is not None and len(dock.per_layer.data["series"]) == dock.layer.count()
    # the layer shown unasked is a feature layer, not a 3 x 3 colour term
    assert dock.gram.data["matrices"][0].shape[0] > 3
    # the picker chooses the layer; the three matrices share one scale
    dock.layer.setCurrentIndex(dock.layer.count() - 1)
    chosen = dock.layer.currentText()
    assert dock.gram.data is dock.grams[chosen].data
    assert "one scale" in dock.gram.range_label.text()
    assert dock.save_button.isEnabled()
    before = window.store.count_images()
    target = dock.save_result()
    assert window.store.count_images() == before + 1 and target.is_file()
    assert target.parent.name == "styled"


def test_pause_step_and_stop_keep_the_picture(window, qtbot):
    dock = window.style_transfer.open_dock()
    small(dock, 5000)
    dock.start()
    dock.toggle_pause()
    assert dock.pause_button.text() == "Resume"
    dock.single_step()
    qtbot.waitUntil(lambda: len(dock.curves.series.get("loss", [])) >= 1, timeout=60_000)
    dock.toggle_pause()
    qtbot.waitUntil(lambda: len(dock.curves.series.get("loss", [])) >= 3, timeout=60_000)
    dock.stop()
    qtbot.waitUntil(lambda: not dock.busy(), timeout=60_000)
    assert "kept" in dock.status.text()
    assert dock.result_path is not None and dock.result_path.is_file()


def test_a_bad_style_file_is_a_message_not_a_crash(window, qtbot, tmp_path):
    dock = window.style_transfer.open_dock()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    dock.set_style(str(bad))
    dock.start()
    qtbot.waitUntil(lambda: not dock.busy(), timeout=60_000)
    assert "broken.png" in dock.status.text() and "failed" in dock.status.text()


def test_stylise_with_a_fast_style_checkpoint(window, qtbot, tmp_path):
    from engine.models.checkpoint import save_checkpoint
    from engine.models.style import TRANSFORMER_VERSION, build_transformer

    config = {"width": 4, "residual_blocks": 1}
    ckpt = tmp_path / "fast.ckpt"
    save_checkpoint(ckpt, build_transformer(config).state_dict(),
                    {"family": "faststyle", "classes": [], "config": config, "metrics": {}, "style": "brick",
                     "transformer_version": TRANSFORMER_VERSION})
    dock = window.style_transfer.open_dock()
    dock.stylise_with(ckpt)
    qtbot.waitUntil(lambda: not dock.busy(), timeout=60_000)
    assert dock.picture.item.image.shape[:2] == (96, 96)
    assert dock.result_path is not None and np.asarray(dock.inputs.data["images"]).shape[0] == 2
