"""A teacher opens Models > Pretrained models…, sees torchvision's COCO detectors with their size,
COCO mAP and licence, and gets one with a click: progress, cancel, a plain message without network,
and a refused file that is not the model's weights. The download URL is redirected to a server on
127.0.0.1: nothing here touches the internet."""
import dataclasses
import socket

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from app.main_window import MainWindow
from engine.annotations import ProjectStore
from engine.infer import pretrained
from tests.app.workbench_project import make_project
from tests.engine.infer.loopback import LoopbackServer, hashed_name

LEFT = Qt.MouseButton.LeftButton
SMALL = "fasterrcnn_mobilenet_v3_large_320_fpn"
PAYLOAD = bytes(range(256)) * 2048  # 512 KiB


@pytest.fixture
def win(tmp_path, qtbot, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty hub cache
    monkeypatch.delenv("VISIONBENCH_MODEL_DIR", raising=False)
    w = MainWindow(ProjectStore(make_project(tmp_path / "proj")))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
    assert w.jobs.shutdown(10.0)


def _redirect(monkeypatch, url: str):
    """torchvision's catalogue, with the small model's URL pointing at the loopback server."""
    real = pretrained.catalogue()
    patched = [dataclasses.replace(m, url=url) if m.arch == SMALL else m for m in real]
    monkeypatch.setattr(pretrained, "catalogue", lambda: list(patched))


def _open(win, qtbot):
    next(a for a in win.models_menu.actions() if a.text() == "Pretrained models…").trigger()
    dialog = win.pretrained.dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    dialog.select(SMALL)
    return dialog


def _cell(dialog, arch, column):
    row = next(i for i, m in enumerate(dialog.models) if m.arch == arch)
    return dialog.table.item(row, column).text()


def test_the_dialog_lists_the_coco_detectors_and_downloads_nothing_on_its_own(win, qtbot, monkeypatch, tmp_path):
    with LoopbackServer({}) as server:
        _redirect(monkeypatch, server.url(f"/models/{hashed_name(SMALL, PAYLOAD)}"))
        dialog = _open(win, qtbot)
        assert [m.arch for m in dialog.models][:3] == ["ssdlite320_mobilenet_v3_large", SMALL,
                                                       "fasterrcnn_mobilenet_v3_large_fpn"]  # smallest first
        assert len(dialog.models) == 10
        assert _cell(dialog, "maskrcnn_resnet50_fpn_v2", 4) == "47.4"  # box mAP from torchvision's metadata
        assert _cell(dialog, "maskrcnn_resnet50_fpn_v2", 5) == "41.8"
        assert _cell(dialog, "fasterrcnn_resnet50_fpn", 5) == "–"  # no masks
        assert _cell(dialog, "fasterrcnn_resnet50_fpn", 3) == "160 MB"
        assert "BSD" in _cell(dialog, SMALL, 6) and _cell(dialog, SMALL, 7) == "no"
        assert "hub cache" in dialog.folder_label.text()
        assert dialog.get_button.isEnabled() and not dialog.cancel_button.isEnabled()
        qtbot.wait(200)
        assert server.requests == []  # opening the dialog fetched nothing


def test_get_downloads_with_progress_into_the_chosen_model_folder(win, qtbot, monkeypatch, tmp_path):
    name = hashed_name(SMALL, PAYLOAD)
    with LoopbackServer({f"/models/{name}": PAYLOAD}, delay=0.002) as server:
        _redirect(monkeypatch, server.url(f"/models/{name}"))
        dialog = _open(win, qtbot)
        win.pretrained.choose_folder(tmp_path / "my models")
        assert str(tmp_path / "my models") in dialog.folder_label.text()
        shown, show = [], dialog.show_progress
        monkeypatch.setattr(dialog, "show_progress", lambda *a: (shown.append(a), show(*a)))
        with qtbot.waitSignal(win.jobs.finished, timeout=20_000):
            qtbot.mouseClick(dialog.get_button, LEFT)
            assert not dialog.get_button.isEnabled() and dialog.cancel_button.isEnabled()
    assert (tmp_path / "my models" / name).read_bytes() == PAYLOAD
    assert shown[0][:2] == (0, None)  # a busy bar while connecting
    assert any(total == len(PAYLOAD) for _, total, _ in shown)  # then bytes of the file's size (throttled)
    assert _cell(dialog, SMALL, 7) == "yes (model folder)" and not dialog.get_button.isEnabled()
    assert "is ready" in dialog.status.text()
    assert tmp_path / "my models" / name in win.models.detector_files()  # every detector picker lists it


def test_cancel_stops_the_download_and_keeps_nothing(win, qtbot, monkeypatch, tmp_path):
    name = hashed_name(SMALL, PAYLOAD * 8)
    with LoopbackServer({f"/models/{name}": PAYLOAD * 8}, delay=0.02) as server:
        _redirect(monkeypatch, server.url(f"/models/{name}"))
        dialog = _open(win, qtbot)
        win.pretrained.choose_folder(tmp_path / "models")
        qtbot.mouseClick(dialog.get_button, LEFT)
        qtbot.waitUntil(lambda: dialog.progress.isVisible() and dialog.progress.maximum() == 1000, timeout=10_000)
        with qtbot.waitSignal(win.jobs.finished, timeout=10_000) as blocker:
            qtbot.mouseClick(dialog.cancel_button, LEFT)
    assert blocker.args[1].state == "cancelled"
    assert "cancelled" in dialog.status.text() and not dialog.progress.isVisible()
    assert list((tmp_path / "models").iterdir()) == []
    assert dialog.get_button.isEnabled()


def test_without_network_the_user_reads_a_plain_message_and_the_offline_way(win, qtbot, monkeypatch, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _redirect(monkeypatch, f"http://127.0.0.1:{port}/models/{hashed_name(SMALL, PAYLOAD)}")
    dialog = _open(win, qtbot)
    with qtbot.waitSignal(win.jobs.finished, timeout=20_000):
        qtbot.mouseClick(dialog.get_button, LEFT)
    text = win.last_error_box.text()
    assert "connection was refused" in text and "Add from file" in text and "Traceback" not in text
    assert "Error:" not in text  # no exception class names for the user
    assert text == dialog.status.text()


def test_add_from_file_refuses_a_state_dict_with_wrong_keys_naming_the_file(win, qtbot, monkeypatch, tmp_path):
    wrong = tmp_path / "resnet18 from a colleague.pth"
    torch.save({"conv1.weight": torch.zeros(2, 3, 3, 3), "fc.bias": torch.zeros(2)}, wrong)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(wrong), ""))
    dialog = _open(win, qtbot)
    with qtbot.waitSignal(win.jobs.finished, timeout=30_000):
        qtbot.mouseClick(dialog.add_button, LEFT)
    text = win.last_error_box.text()
    assert str(wrong) in text and "keys do not fit" in text
    assert win.last_error_box.windowTitle() == "Cannot add the file"
    assert not (tmp_path / "torch_home").exists()  # nothing copied
