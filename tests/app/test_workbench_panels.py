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
