"""A project remembers what the annotator did, undo/redo goes through the store."""
import numpy as np
import pytest
from PIL import Image

from engine.annotations import Annotation, BadInput, Box, Polygon, ProjectStore
from engine.annotations.history import EditHistory


@pytest.fixture
def project(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    store = ProjectStore.create(tmp_path / "p.vbproj")
    yield store, tmp_path
    store.close()


def test_draw_undo_redo_reopen(project):
    store, root = project
    cat = store.add_category("cat")
    img = store.add_image(root / "a.png")
    assert (img.width, img.height, img.path) == (30, 20, "a.png")
    hist = EditHistory(store)
    a = hist.add(Annotation(img.id, cat.id, Polygon(((1, 1), (10, 1), (5, 8)))))
    hist.update(a.with_(geometry=Box(0, 0, 5, 5)))
    hist.delete(a.id)
    assert store.count_annotations() == 0
    hist.undo()
    assert store.annotation(a.id).geometry == Box(0, 0, 5, 5)
    hist.undo()
    assert store.annotation(a.id).geometry == Polygon(((1, 1), (10, 1), (5, 8)))
    hist.undo()
    assert store.count_annotations() == 0 and not hist.can_undo
    for _ in range(3):
        hist.redo()
    assert store.count_annotations() == 0
    hist.undo()
    store.close()
    again = ProjectStore(root / "p.vbproj")
    assert again.annotation(a.id).geometry == Box(0, 0, 5, 5)
    again.close()


def test_second_writer_is_refused_with_a_clear_message(project):
    store, root = project
    with pytest.raises(BadInput, match="open for writing in another"):
        ProjectStore(root / "p.vbproj")
    ro = ProjectStore(root / "p.vbproj", readonly=True)
    assert ro.categories() == []
    ro.close()


def test_not_a_project(tmp_path):
    (tmp_path / "x.vbproj").write_text("hello")
    with pytest.raises(BadInput, match="x.vbproj"):
        ProjectStore(tmp_path / "x.vbproj")
