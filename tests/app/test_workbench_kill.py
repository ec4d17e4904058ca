"""Never lose work: the workbench runs in a subprocess, reports each committed edit, is killed
with SIGKILL (no close, no clean-up) and every reported edit is in the reopened project."""
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.annotations import ProjectStore
from engine.annotations.geometry import bounds
from tests.app.test_workbench_edits import make_scene_project

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_every_reported_edit_survives_sigkill(tmp_path):
    path = make_scene_project(tmp_path, 2)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tests.app.workbench_kill_child", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reports = []
    watchdog = threading.Timer(90, proc.kill)  # a child that hangs must not hang the suite
    watchdog.start()
    try:
        for line in proc.stdout:  # blocks until the child reports; it never exits by itself
            if line.startswith("READY"):
                break
            reports.append(json.loads(line))
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert [r["step"] for r in reports] == ["draw box", "move box", "draw polygon", "mark done", "brush",
                                           "delete mask", "undo delete"], proc.stderr.read()[-2000:]
    last = reports[-1]
    store = ProjectStore(path)  # reopening after the kill (a stale lock file must not refuse it)
    try:
        want = {int(k): v for k, v in last["annotations"].items() if v is not None}
        got = {a.id: [a.image_id, a.kind, [round(v, 3) for v in bounds(a.geometry)]]
               for anns in store.all_annotations().values() for a in anns}
        assert got == want
        assert sorted(x[1] for x in want.values()) == ["box", "mask", "polygon"]
        # the nudge moved the box by one pixel, and that move was kept
        box = next(v for v in want.values() if v[1] == "box")
        first_box = next(v for v in reports[0]["annotations"].values() if v and v[1] == "box")
        assert box[2][0] == pytest.approx(first_box[2][0] + 1)
        status = {r.id: r.status for r in store.images()}
        assert status == {int(k): v for k, v in last["status"].items()}
        assert sorted(status.values()) == ["done", "in_progress"]  # new -> in progress -> done by the user
    finally:
        store.close()
