"""A teacher verifies two glyphs, moves tau, draws the ROC, runs a one-shot test and searches
the project for look-alikes, from the Models menu of the real main window."""
import pytest
import torch
from PySide6.QtCore import Qt

from app.main_window import MainWindow
from engine.annotations import ProjectStore
from engine.demo.glyphs import build_glyphs
from engine.models.checkpoint import save_checkpoint
from engine.models.siamese import DEFAULT_CONFIG, build_siamese

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("glyph_docks")
    path = build_glyphs(folder, n_identities=10, renderings=3, seed=4)
    torch.manual_seed(0)
    config = dict(DEFAULT_CONFIG, input_size=32, pretrained=False)
    save_checkpoint(folder / "models" / "siamese-test.ckpt", build_siamese(config).state_dict(),
                    {"family": "siamese", "kind": "embedding", "classes": [], "config": config, "metrics": {},
                     "input_size": 32, "tau": 0.5})
    return path


@pytest.fixture
def window(qtbot, project):
    win = MainWindow(ProjectStore(project))
    qtbot.addWidget(win)
    win.models.device = "cpu"
    win.show()
    yield win
    win.models.shutdown()
    win.jobs.shutdown()


def _records(win):
    return {r.path.rsplit("/", 1)[-1]: r for r in win.store.images()}


def test_verify_two_pictures_then_move_tau_and_draw_the_roc(window, qtbot):
    win = window
    win.actions_by_name["verify_identities"].trigger()
    dock = win.models.views["verify_identities"]
    assert dock.detector_path().endswith("siamese-test.ckpt")
    recs = _records(win)
    dock.set_item(0, (recs["glyph_0000_00.png"].id, None))
    dock.set_item(1, (recs["glyph_0001_00.png"].id, None))
    qtbot.waitUntil(lambda: dock.distance is not None and not dock.busy(), timeout=60000)
    assert dock.tau == pytest.approx(0.5, abs=0.01)  # the checkpoint's tau
    d = dock.distance
    dock.set_tau(d + 0.05)
    assert "same" in dock.verdict_label.text()
    dock.set_tau(max(0.0, d - 0.05))
    assert "different" in dock.verdict_label.text()
    dock.evaluate_pairs()
    qtbot.waitUntil(lambda: dock.roc_data is not None and not dock.busy(), timeout=60000)
    assert "EER" in dock.pairs_label.text() and "accuracy" in dock.pairs_label.text()
    assert dock.tau == pytest.approx(dock.roc_data["tau"], abs=0.01)  # tau moves to the EER
    dock.ways.setValue(5)
    assert "2-way accuracy" in dock.oneshot_label.text()  # 2 validation identities: 2 ways at most


def test_search_lists_look_alikes_and_a_click_goes_there(window, qtbot):
    win = window
    recs = _records(win)
    win.controller.open_image(recs["glyph_0003_01.png"].id)
    win.actions_by_name["image_search"].trigger()
    dock = win.models.views["image_search"]
    dock.k.setValue(5)
    dock.run()
    qtbot.waitUntil(lambda: dock.last_result is not None and not dock.busy(), timeout=60000)
    assert dock.results.count() == 5
    assert all(r["image_id"] != recs["glyph_0003_01.png"].id for r in dock.last_result["results"])
    distances = [r["distance"] for r in dock.last_result["results"]]
    assert distances == sorted(distances)
    item = dock.results.item(2)
    target = item.data(Qt.ItemDataRole.UserRole)[0]
    dock.go_to(item)
    assert win.controller.image.id == target


def test_without_a_checkpoint_the_dock_says_so(window, qtbot):
    win = window
    win.actions_by_name["image_search"].trigger()
    dock = win.models.views["image_search"]
    dock.detector_combo.setCurrentIndex(0)  # "(none)"
    dock.run()
    qtbot.waitUntil(lambda: not dock.busy(), timeout=30000)
    assert "Siamese checkpoint" in dock.status.text()


def test_file_import_of_a_folder_per_identity(tmp_path, qtbot):
    import cv2
    import numpy as np

    from engine.data.identities import identity_items
    from tests.app.test_file_menu import import_through_menu
    from tests.app.workbench_project import make_project

    win = MainWindow(ProjectStore(make_project(tmp_path / "proj")))
    qtbot.addWidget(win)
    win.show()
    src = tmp_path / "proj" / "people"
    for name in ("ann", "ben"):
        (src / name).mkdir(parents=True)
        for k in range(2):
            cv2.imwrite(str(src / name / f"{k}.png"), np.full((16, 16, 3), 40 * k + (90 if name == "ann" else 0),
                                                              np.uint8))
    import_through_menu(qtbot, win, "Identities (folder per identity)", src)
    items, source = identity_items(win.store)
    assert source == "attribute" and sorted({it.identity for it in items}) == ["ann", "ben"]
    assert len(items) == 4 and all(it.box is None for it in items)
    win.close()
