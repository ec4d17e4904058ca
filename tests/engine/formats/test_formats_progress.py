"""Every format reports progress per image while reading, storing and writing (the CLI's tqdm bars)."""
from __future__ import annotations

import pytest

from engine.annotations.formats import FORMATS, export_from, import_into
from engine.annotations.model import Box, Polygon
from engine.annotations.store import ProjectStore

from .strategies import ImageSpec, build_project


def _spec(n: int) -> list[ImageSpec]:
    objects = ((0, Box(1, 2, 9, 7), None), (1, Polygon(((2, 2), (10, 2), (6, 9))), None))
    return [ImageSpec(f"im_{i}.png", 16, 12, ("train", "val")[i % 2], objects) for i in range(n)]


def _recorder():
    calls: list[tuple] = []
    return calls, lambda done, total, stage: calls.append((done, total, stage))


def _by_stage(calls) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list] = {}
    for done, total, stage in calls:
        out.setdefault(stage, []).append((done, total))
    return out


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_and_import_tick_once_per_image(tmp_path, fmt):
    source = build_project(tmp_path / "a", _spec(5))
    calls, progress = _recorder()
    try:
        export_from(source, fmt, tmp_path / "out", progress=progress)
    finally:
        source.close()
    written = _by_stage(calls)
    assert list(written) == ["write"]
    assert written["write"] == [(k, 5) for k in range(6)]  # 0/5 first, then one tick per image

    calls, progress = _recorder()
    with ProjectStore.create(tmp_path / "b" / "p.vbproj") as target:
        report = import_into(target, fmt, tmp_path / "out", progress=progress)
    assert report.images_added == 5
    stages = _by_stage(calls)
    assert list(stages) == ["read", "store"]  # reading finishes before anything is stored
    assert stages["read"][-1] == (5, 5) and stages["store"] == [(k, 5) for k in range(6)]
    dones = [d for d, _ in stages["read"]]
    assert dones == sorted(dones)
