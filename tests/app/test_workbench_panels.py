"""Panel models on their own: the annotation table stays consistent through big and small changes."""
import pytest

from app.controllers import AnnotationController
from app.panels.annotations import COL_ID, AnnotationsPanel
from engine.annotations import Annotation, Box, ProjectStore
from tests.app.workbench_project import make_project


@pytest.fixture
def ctl(tmp_path, qtbot):
    store = ProjectStore(make_project(tmp_path))
    c = AnnotationController(store)
    c.open_image(store.images()[0].id)
    yield c
    store.close()


def test_annotation_table_follows_adds_updates_and_deletes(ctl, qtbot):
    panel = AnnotationsPanel(ctl)
    qtbot.addWidget(panel)
    img = ctl.image.id
    ctl.record("draw", add=[Annotation(img, 1, Box(i % 30, 1, i % 30 + 5, 6)) for i in range(60)])
    model = panel.model
    ids = [a.id for a in ctl.annotations()]
    assert model.rowCount() == 60

    def shown():
        return [int(model.index(r, COL_ID).data()) for r in range(model.rowCount())]

    assert shown() == ids
    ctl.delete(ids[10:40])  # big delete: model reset
    assert shown() == ids[:10] + ids[40:]
    ctl.delete([ids[0], ids[5], ids[59]])  # small delete: row removals
    expect = [i for i in ids[:10] + ids[40:] if i not in (ids[0], ids[5], ids[59])]
    assert shown() == expect and all(model.row_of(i) == k for k, i in enumerate(expect))
    panel.set_selection([ids[7]])
    ctl.set_category([ids[7]], 2)
    assert panel.selected_ids() == [ids[7]]
    assert model.index(model.row_of(ids[7]), 3).data() == "dog"
    ctl.undo()  # category back
    ctl.undo()  # the three come back (appended)
    assert sorted(shown()) == sorted(expect + [ids[0], ids[5], ids[59]])


def test_browser_repaints_a_changed_row_without_laying_out_every_row(tmp_path, qtbot, monkeypatch):
    """A shape count or status change repaints that row; the list is not laid out again (that
    cost O(images) per edit on big projects)."""
    import app.panels.browser as browser
    from app.panels.browser import BrowserPanel, ImageRowDelegate
    from app.thumbnails import ThumbnailLoader

    counted = []

    class CountingModel(browser.ImageListModel):
        def rowCount(self, parent=browser.QModelIndex()):  # noqa: N802 - a full layout asks it per row
            counted.append(1)
            return super().rowCount(parent)

    monkeypatch.setattr(browser, "ImageListModel", CountingModel)
    store = ProjectStore(make_project(tmp_path, n_images=400, with_files=False))
    loader = ThumbnailLoader()
    panel = BrowserPanel(store, loader)
    qtbot.addWidget(panel)
    panel.resize(260, 500)
    panel.refresh()
    panel.show()
    qtbot.waitExposed(panel)
    painted = []
    orig = ImageRowDelegate.paint

    class Spy(ImageRowDelegate):
        def paint(self, p, option, index):
            painted.append(index.row())
            orig(self, p, option, index)

    panel.view.setItemDelegate(Spy(panel.view))
    qtbot.wait(50)
    painted.clear()
    counted.clear()
    first = store.images()[1]
    panel.model.set_shape_count(first.id, 7)
    qtbot.waitUntil(lambda: 1 in painted, timeout=2000)
    assert panel.model.index(1).data() and panel.model.shape_count(first.id) == 7
    assert set(painted) <= set(range(0, 8))  # only visible rows, the changed one among them
    assert len(counted) < 100  # a relayout asks rowCount about twice per row (800 here)
    loader.shutdown()
    store.close()


def test_annotation_list_shows_source_score_and_proposals(ctl, qtbot):
    from PySide6.QtCore import Qt

    from app.panels.annotations import COL_CATEGORY, COL_KIND, COL_SCORE, COL_SOURCE

    panel = AnnotationsPanel(ctl)
    qtbot.addWidget(panel)
    img = ctl.image.id
    ctl.record("predict", add=[Annotation(img, 1, Box(1, 1, 9, 9), source="yolo", score=0.876),
                               Annotation(img, 2, Box(2, 2, 8, 8), source="unet", score=0.5,
                                          attributes={"proposal": True}),
                               Annotation(img, 1, Box(3, 3, 7, 7))])
    m = panel.model
    rows = [(m.index(r, COL_CATEGORY).data(), m.index(r, COL_KIND).data(), m.index(r, COL_SOURCE).data(),
             m.index(r, COL_SCORE).data()) for r in range(m.rowCount())]
    assert rows == [("cat", "box", "yolo", "0.88"), ("dog", "box", "unet ?", "0.50"), ("cat", "box", "manual", "")]
    assert m.index(1, COL_SOURCE).data(Qt.ItemDataRole.FontRole).italic()  # proposals in italics
    ctl.set_category([m.annotation_at(0).id], 2)  # the cached row text follows the stored change
    assert m.index(0, COL_CATEGORY).data() == "dog"
