"""Two imports create the same new project at the same moment (issue 14, point 4).

Two worker processes, released together by a barrier, run `visionbench import coco SRC --project P`
into a project (and folder) that does not exist yet, 50 times. Each round exactly one wins (exit 0)
and the other either finds the project held (exit 2, "open for writing in another Visionbench
process") or, if it came late, finds it already holding this source (exit 2, "already"): never
both failing, never an internal error, and the winner's project is whole, with its lock file.
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
from pathlib import Path

from engine.annotations import Box, Polygon, ProjectStore
from engine.annotations.formats import export_from

ROUNDS = 50


def worker(barrier, src: str, root: str, results) -> None:
    from engine import cli

    for r in range(ROUNDS):
        err = io.StringIO()
        barrier.wait()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["import", "coco", src, "--project", f"{root}/round{r}/new/p.vbproj"])
        results.put((r, code, err.getvalue()))


def test_two_processes_creating_one_project_one_wins_the_other_exits_2(tmp_path):
    from tests.engine.formats.strategies import ImageSpec, build_project

    objects = ((0, Box(1, 1, 6, 5), None), (1, Polygon(((8, 2), (14, 2), (11, 8))), None))
    store = build_project(tmp_path / "source_project", [ImageSpec("a.png", 20, 10, "train", objects)])
    try:
        export_from(store, "coco", tmp_path / "src")
    finally:
        store.close()

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(barrier, str(tmp_path / "src"), str(tmp_path), results))
             for _ in range(2)]
    for p in procs:
        p.start()
    outcomes: dict[int, list] = {}
    try:
        for _ in range(2 * ROUNDS):
            r, code, err = results.get(timeout=120)
            outcomes.setdefault(r, []).append((code, err))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert sorted(outcomes) == list(range(ROUNDS))
    raced = 0
    for r, pair in sorted(outcomes.items()):
        codes = sorted(code for code, _ in pair)
        assert codes == [0, 2], (r, pair)
        loser = next(err for code, err in pair if code == 2)
        assert "internal error" not in loser and "p.vbproj" in loser, (r, loser)
        raced += "open for writing in another Visionbench process" in loser
        assert "already" in loser or "open for writing" in loser, (r, loser)
        project = tmp_path / f"round{r}" / "new" / "p.vbproj"
        assert Path(f"{project}.lock").exists()
        with ProjectStore(project, readonly=True) as s:
            assert (s.count_images(), s.count_annotations()) == (1, 2), r
        assert not [p for p in project.parent.iterdir() if "creating" in p.name]
    assert raced > 0  # the barrier really made them collide, at least sometimes
