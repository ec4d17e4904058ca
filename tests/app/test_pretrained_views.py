"""COCO weights the user got (here a stand-in saved under torchvision's file name in their model
folder: the machine has no network) appear in every detector picker and run in the comparison
with COCO's class names, next to the project's own detectors; the warning about classes that are
not categories of the project stays."""
import pytest

from app.main_window import MainWindow
from engine.annotations import ProjectStore
from tests.app.workbench_project import make_project
from tests.engine.infer.coco_weights import write_test_coco_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def coco_file(tmp_path_factory):
    return write_test_coco_weights(tmp_path_factory.mktemp("my models"))


@pytest.fixture
def win(tmp_path, qtbot, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    w = MainWindow(ProjectStore(make_project(tmp_path / "proj", size=(96, 72))))
    w.models.device = "cpu"
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    assert w.jobs.shutdown(10.0) and w.models.shutdown(10.0)


def test_a_coco_detector_in_the_model_folder_runs_in_compare_and_is_offered_to_pre_label(win, qtbot, coco_file):
    win.models.set_model_folder(coco_file.parent)
    win.models.open_view("compare_detectors")
    dock = win.models.views["compare_detectors"]
    qtbot.waitUntil(lambda: not dock.busy() and dock.view.image is not None, timeout=30_000)
    listed = [dock.view.picker.itemData(i) for i in range(dock.view.picker.count())]
    assert str(coco_file) in listed
    with qtbot.waitSignal(dock.view.ran, timeout=120_000):
        dock.set_detector(coco_file)
    row = dock.view.results()[0]
    assert row["error"] is None and row["name"] == f"fasterrcnn_mobilenet_v3_large_320_fpn:{coco_file.name}"
    predictor = dock.view.panels[0].predictor
    assert predictor.class_names[:3] == ["person", "bicycle", "car"]
    assert "classes that are not categories of this project" in dock.status.text()

    win.actions_by_name["prelabel"].trigger()
    offered = win.assist.dialog.checkpoint_box
    assert str(coco_file) in [offered.itemData(i) for i in range(offered.count())]
    win.assist.dialog.reject()
