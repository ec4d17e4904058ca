"""Category names survive every format, or are refused at import (issue 14, point 2).

A COCO file is the most permissive way in (any JSON string can be a name). For arbitrary Unicode
names: either the import refuses it, naming ``categories[0].name``, or the project exports in
every format and each export imports back with exactly that name (stripped). No format may
split a name into two classes, shift indices or turn it into something else.

One exception, by design of the mask format: ``_background_`` is class index 0 there (what no
object covers), so objects of a category named so are not painted.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.annotations.errors import ImportFailed
from engine.annotations.formats import FORMATS, export_from, import_into
from engine.annotations.limits import MAX_NAME_CHARS
from engine.annotations.store import ProjectStore

from .strategies import write_png

NASTY = ["tabby\nkitten", "a\u2028b", "x\x00", "\u0085", " cat ", "__ignore__", "_background_", "#1", "- dog",
         "null", "1", "a: b", '"q"', "<&>", "🐱", "\ufeffcat", "é\u0301", "x" * MAX_NAME_CHARS, "\u00a0cat\u3000"]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    return write_png(tmp_path_factory.mktemp("names") / "src" / "a.png", 20, 10)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.text(max_size=12) | st.sampled_from(NASTY))
@example(name="tabby\nkitten")
@example(name="__ignore__")
@example(name="_background_")
def test_a_name_is_refused_or_comes_back_unchanged_from_every_format(image, name):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "coco"
        src.mkdir()
        (src / "annotations.json").write_text(json.dumps({
            "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
            "categories": [{"id": 1, "name": name}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 4]}]}))
        shutil.copyfile(image, src / "a.png")
        with ProjectStore.create(work / "p" / "p.vbproj") as store:
            try:
                import_into(store, "coco", src)
            except ImportFailed as exc:
                assert [p.field for p in exc.problems] == ["categories[0].name"], exc.problems
                return
            [stored] = [c.name for c in store.categories()]
            assert stored == name.strip()
            for fmt in FORMATS:
                export_from(store, fmt, work / f"out_{fmt}")
                with ProjectStore.create(work / f"back_{fmt}" / "p.vbproj") as back:
                    import_into(back, fmt, work / f"out_{fmt}")
                    names = [c.name for c in back.categories()]
                    used = {back.category(a.category_id).name for anns in back.all_annotations().values()
                            for a in anns}
                if fmt == "masks" and stored == "_background_":
                    assert used == set(), names
                    continue
                assert names == [stored] and used == {stored}, (fmt, names)
