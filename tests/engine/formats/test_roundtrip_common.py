"""Random projects survive export -> import for COCO, LabelMe and mask PNGs (hypothesis), model
proposals keep their source, and the shared helpers behave."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from engine.annotations.errors import BadInput
from engine.annotations.formats import FORMATS, export_from, import_into
from engine.annotations.formats.common import (atomic_write_json, export_names, load_json,
                                               resolve_inside)
from engine.annotations.geometry import geometry_to_mask
from engine.annotations.model import Annotation, Box, ImageRecord, Polygon
from engine.annotations.store import ProjectStore

from .strategies import CATEGORY_NAMES, ImageSpec, build_project, image_set, normalized, project_specs

SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _reimport(fmt: str, store: ProjectStore, root: Path, name: str) -> ProjectStore:
    export_from(store, fmt, root / f"{name}_export", proposals=True)  # the whole project, proposals too
    other = ProjectStore.create(root / name / "p.vbproj")
    import_into(other, fmt, root / f"{name}_export")
    return other


@SETTINGS
@given(spec=project_specs())
def test_coco_roundtrip_random(tmp_path_factory, spec):
    root = tmp_path_factory.mktemp("coco")
    a = build_project(root / "a", spec)
    b = _reimport("coco", a, root, "b")
    try:
        assert normalized(b) == normalized(a, kinds=("box", "polygon", "mask"))
        assert image_set(b) == image_set(a)
    finally:
        a.close()
        b.close()


@SETTINGS
@given(spec=project_specs())
def test_labelme_roundtrip_random(tmp_path_factory, spec):
    root = tmp_path_factory.mktemp("labelme")
    a = build_project(root / "a", spec)
    b = _reimport("labelme", a, root, "b")
    try:
        assert normalized(b, with_split=False) == normalized(a, with_split=False)
        assert image_set(b, with_split=False) == image_set(a, with_split=False)
    finally:
        a.close()
        b.close()


@SETTINGS
@given(spec=project_specs(kinds=("box", "polygon", "mask")))
def test_masks_roundtrip_random(tmp_path_factory, spec):
    from PIL import Image

    root = tmp_path_factory.mktemp("masks")
    a = build_project(root / "a", spec)
    b = _reimport("masks", a, root, "b")
    c = _reimport("masks", b, root, "c")
    try:
        # the first export paints the annotations in order, class index = 1 + category position
        anns = a.all_annotations()
        for rec in a.images():
            expect = np.zeros((rec.height, rec.width), np.uint8)
            for ann in anns.get(rec.id, []):
                expect[geometry_to_mask(ann.geometry, rec.height, rec.width) > 0] = ann.category_id
            got = np.asarray(Image.open(root / "b_export" / "SegmentationClass" / rec.path))
            assert np.array_equal(got, expect)
        # and what was imported from PNGs comes back unchanged, splits too (ImageSets/Segmentation)
        assert normalized(c) == normalized(b)
        assert image_set(c) == image_set(b) == image_set(a)
    finally:
        a.close()
        b.close()
        c.close()


@pytest.mark.parametrize("fmt", ["coco", "labelme"])
def test_model_proposals_keep_source_score_and_instance(tmp_path, fmt):
    """A model's proposal (source = model name, score) exported and imported again is still that
    model's proposal, not a manual annotation."""
    a = build_project(tmp_path / "a",
                      [ImageSpec("p.png", 16, 12, "val", ((1, Polygon(((2, 2), (10, 2), (6, 9))), None),))])
    rec = a.images()[0]
    cat = a.categories()[0]
    a.add_annotation(Annotation(rec.id, cat.id, Box(1, 1, 5, 5), instance_id=4, source="yolo", score=0.625,
                                attributes={"proposal": True}))
    b = _reimport(fmt, a, tmp_path, "b")
    try:
        got = [(x.source, x.score, x.instance_id, x.attributes) for x in b.annotations(b.images()[0].id)]
        assert ("yolo", 0.625, 4, {"proposal": True}) in got
        assert all(s == "manual" for s, *_ in got if s != "yolo")
    finally:
        a.close()
        b.close()


def test_registry_names_all_formats():
    assert set(FORMATS) == {"coco", "voc", "yolo", "labelme", "masks"}
    assert CATEGORY_NAMES  # the shared strategies module imports


# ---- shared helpers -------------------------------------------------------------------------

def test_resolve_inside_rejects_escapes(tmp_path):
    base = tmp_path / "src"
    (base / "sub").mkdir(parents=True)
    assert resolve_inside(base, "sub\\x.png", "f.json", "file_name") == (base / "sub" / "x.png").resolve()
    assert resolve_inside(base, str(base / "sub" / "x.png"), "f.json", "f") == (base / "sub" / "x.png").resolve()
    assert resolve_inside(base, "../x.png", "f.json", "f", start=base / "sub") == (base / "x.png").resolve()
    for bad in ("../x.png", "sub/../../x.png", str(tmp_path / "x.png"), "/etc/passwd", ""):
        with pytest.raises(BadInput) as err:
            resolve_inside(base, bad, "f.json", "file_name")
        assert err.value.problem.file == "f.json" and err.value.problem.field == "file_name"
    os.symlink(tmp_path, base / "link")
    with pytest.raises(BadInput):
        resolve_inside(base, "link/x.png", "f.json", "file_name")


def test_load_json_reports_line_and_column(tmp_path):
    f = tmp_path / "x.json"
    f.write_text('{\n "a": 1,\n "b": [1, 2,,]\n}')
    with pytest.raises(BadInput) as err:
        load_json(f)
    assert err.value.problem.line == 3 and "column" in err.value.problem.message
    f.write_bytes(b"\xef\xbb\xbf{\"a\": 1}")  # a UTF-8 BOM is fine
    assert load_json(f) == {"a": 1}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "d" / "x.json", {"a": [1, 2]})
    atomic_write_json(tmp_path / "d" / "x.json", {"a": [3]})
    assert load_json(tmp_path / "d" / "x.json") == {"a": [3]}
    assert os.listdir(tmp_path / "d") == ["x.json"]


def test_export_names_keep_relative_paths_and_flatten_outside_ones():
    recs = [ImageRecord(1, "imgs/a.png", 1, 1), ImageRecord(2, "../other/a.png", 1, 1),
            ImageRecord(3, "../b.png", 1, 1), ImageRecord(4, "a.png", 1, 1)]
    assert export_names(recs) == {1: "imgs/a.png", 2: "2_a.png", 3: "b.png", 4: "a.png"}
