"""Issue 2's round-trip promise, literally and for every format: what an import produced, exported
and imported again, is the same project (same images, splits where the format holds them,
categories, geometry), on random projects of every annotation kind (hypothesis).

The first export may lose what a format cannot hold (VOC keeps boxes only and JPEG images, YOLO
rescales to 8 decimals and writes one kind of row, mask PNGs rasterize); from then on nothing may
change.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from engine.annotations.formats import FORMATS, export_from, import_into
from engine.annotations.store import ProjectStore

from .strategies import build_project, image_set, normalized, project_specs

SPLITS_HELD = {"coco": True, "voc": True, "yolo": True, "labelme": False, "masks": True}


def _trip(store: ProjectStore, fmt: str, folder) -> ProjectStore:
    export_from(store, fmt, folder / "export")
    other = ProjectStore.create(folder / "project" / "p.vbproj")
    import_into(other, fmt, folder / "export")
    return other


@pytest.mark.parametrize("fmt", list(FORMATS))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(spec=project_specs(max_images=2, max_objects=3))
def test_import_export_import_is_the_identity(tmp_path_factory, fmt, spec):
    root = tmp_path_factory.mktemp(f"identity_{fmt}")
    a = build_project(root / "a", spec)
    b = _trip(a, fmt, root / "b")   # the import
    c = _trip(b, fmt, root / "c")   # export it, import again
    try:
        splits = SPLITS_HELD[fmt]
        assert normalized(c, decimals=6, with_split=splits) == normalized(b, decimals=6, with_split=splits)
        assert image_set(c, with_split=splits) == image_set(b, with_split=splits)
        # VOC writes every image as JPEGImages/<id>.jpg: the first export renames a.png to a.jpg
        stem = (lambda n: n.rsplit(".", 1)[0]) if fmt == "voc" else (lambda n: n)
        assert [(stem(n), *rest) for n, *rest in image_set(b, with_split=splits)] == \
            [(stem(n), *rest) for n, *rest in image_set(a, with_split=splits)]
        assert [x.name for x in c.categories()] == [x.name for x in b.categories()]
    finally:
        a.close()
        b.close()
        c.close()
