"""Nothing is ever lost: a writer killed with SIGKILL at random moments keeps every edit it reported.

The writer (this file run as a script) commits one edit per transaction and prints it AFTER the
commit returns. Each edit carries a sequence number `seq`; an annotation's content is a function of
the seq of its last add/update, so the test can check content, not just presence. At most one edit
can be committed but unreported (killed between commit and print); the check allows exactly that.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

# only the standard library up here: this file is also the writer script, started 50 times
REPO = Path(__file__).resolve().parents[3]
STATUSES = ("new", "in_progress", "done", "reviewed")
KILLS = 50


def geometry_for(seq: int):
    from engine.annotations import Box

    return Box(seq % 97, seq % 89, seq % 97 + 1 + seq % 13, seq % 89 + 1 + seq % 7)


def writer(project: str, start_seq: int, rng_seed: int) -> None:
    """Commit edits forever; print 'seq op target [value]' after each commit."""
    from engine.annotations import Annotation, ProjectStore

    rng = random.Random(rng_seed)
    store = ProjectStore(project)
    cat = store.categories()[0].id
    images = [i.id for i in store.images()]
    live = [a.id for anns in store.all_annotations().values() for a in anns]
    seq = start_seq
    out = sys.stdout
    while True:
        op = rng.choice(("add", "add", "update", "delete", "status")) if live else "add"
        if op == "add":
            a = store.add_annotation(Annotation(rng.choice(images), cat, geometry_for(seq), attributes={"seq": seq}))
            live.append(a.id)
            line = f"{seq} add {a.id}"
        elif op == "update":
            a = store.annotation(rng.choice(live))
            store.update_annotation(a.with_(geometry=geometry_for(seq), attributes={"seq": seq}))
            line = f"{seq} update {a.id}"
        elif op == "delete":
            target = live.pop(rng.randrange(len(live)))
            store.delete_annotation(target)
            line = f"{seq} delete {target}"
        else:
            image, status = rng.choice(images), rng.choice(STATUSES)
            store.set_status(image, status)
            line = f"{seq} status {image} {status}"
        out.write(line + "\n")
        out.flush()
        seq += 1


class Model:
    """What the reported edits say the project holds."""

    def __init__(self):
        self.anns: dict[int, int] = {}  # annotation id -> seq of its content
        self.status: dict[int, str] = {}
        self.last_seq = 0

    def apply(self, line: str) -> None:
        parts = line.split()
        seq, op, target = int(parts[0]), parts[1], int(parts[2])
        assert seq > self.last_seq
        self.last_seq = seq
        if op in ("add", "update"):
            self.anns[target] = seq
        elif op == "delete":
            del self.anns[target]
        else:
            self.status[target] = parts[3]


def _check_and_resync(store, model: Model) -> int:
    """Assert the store holds every reported edit (plus at most the one unreported); resync the model."""
    assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    actual = {}
    for anns in store.all_annotations().values():
        for a in anns:
            assert a.geometry == geometry_for(a.attributes["seq"]), "content does not match its seq"
            actual[a.id] = a.attributes["seq"]
    statuses = {i.id: i.status for i in store.images()}
    diffs = [k for k in set(actual) | set(model.anns) if actual.get(k) != model.anns.get(k)]
    status_diffs = [k for k, v in model.status.items() if statuses[k] != v]
    assert len(diffs) + len(status_diffs) <= 1, (diffs, status_diffs)
    for k in diffs:  # the one edit committed after the last report: newer than anything reported
        assert k not in actual or actual[k] == model.last_seq + 1
    extra = len(diffs) + len(status_diffs)
    model.anns = actual
    model.status = {k: statuses[k] for k in model.status}
    return extra


def _make_project(tmp_path: Path) -> Path:
    import numpy as np
    from PIL import Image

    from engine.annotations import ProjectStore

    with ProjectStore.create(tmp_path / "crash.vbproj") as s:
        s.add_category("thing")
        for i in range(3):
            Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / f"{i}.png")
            s.add_image(tmp_path / f"{i}.png")
    return tmp_path / "crash.vbproj"


def test_sigkill_at_random_moments_loses_no_reported_edit(tmp_path):
    from engine.annotations import ProjectStore

    project = _make_project(tmp_path)
    rng = random.Random(1234)
    model = Model()
    reported = 0
    deadline = time.monotonic() + 240  # a safety net on a very slow machine, not the expected time
    for kill in range(KILLS):
        proc = subprocess.Popen([sys.executable, __file__, str(project), str(model.last_seq + 2), str(kill)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
        first = proc.stdout.readline()  # wait for the writer to be in its loop
        assert first, proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(proc.pid, signal.SIGKILL)
        # read through the same buffered pipe as readline (communicate() would skip its buffer)
        rest, err = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        assert proc.wait(timeout=60) == -signal.SIGKILL, err
        # the piece after the last newline is empty, or a line cut short by the kill: not reported
        for line in (first + rest).split("\n")[:-1]:
            model.apply(line)
            reported += 1
        with ProjectStore(project) as store:  # reopens for writing: the kernel released the lock
            _check_and_resync(store, model)
            model.last_seq = max([model.last_seq] + list(model.anns.values()))
        assert time.monotonic() < deadline, f"too slow: {kill} kills"
    assert reported >= KILLS  # every run committed and reported at least one edit


if __name__ == "__main__":
    writer(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
