"""Every lesson of the catalog prepares and draws on every photo of the demo and on an image the
user added (odd size, grey, 16-bit, RGBA): each step has a caption and something to draw."""
import numpy as np
import pytest
from PIL import Image

from engine.demo.photos import PHOTOS, _load
from engine.jobs import Job, run_job_sync
from engine.lessons import catalog, lesson_text
from engine.lessons.base import load_input, make_input

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUNNABLE = [e for e in catalog() if not e.waits_for]
SIDE = 96  # small images: the lessons' work, not the pixels, is under test


def _prepare(entry, data):
    lesson = entry.create()
    outcome = run_job_sync(Job(entry.key, lesson.prepare, data=data))
    assert outcome.state == "finished", outcome.traceback
    assert lesson.step_count >= 2
    for i in range(lesson.step_count):
        step = lesson.step(i)
        assert step.caption and step.scene.panels, (entry.key, i)
    return lesson


def test_the_catalog_lists_the_lessons_in_the_courses_order_with_their_texts():
    keys = [e.key for e in catalog()]
    assert keys[:9] == ["upsampling", "convolutionalization", "localisation", "proposals", "focal_loss",
                        "receptive_field", "semantic_segmentation", "triplet", "gram_matrix"]
    assert keys[9] == "patchgan"
    assert not [e.key for e in catalog() if e.waits_for]  # every lesson has been built
    for e in catalog():
        assert lesson_text(e.key).startswith("# ")


@pytest.mark.parametrize("photo", PHOTOS)
def test_every_lesson_runs_on_every_demo_photo(photo):
    pixels = _load(photo)
    if pixels is None:
        pytest.skip(f"{photo} is not available offline")
    h, w = pixels.shape[:2]
    data = make_input(pixels, boxes=[[w * 0.2, h * 0.2, w * 0.7, h * 0.8]], names=["thing"], max_side=SIDE)
    for entry in RUNNABLE:
        _prepare(entry, data)


@pytest.mark.parametrize("kind", ["grey16", "rgba_odd"])
def test_every_lesson_runs_on_an_image_the_user_added_without_any_shape(tmp_path, kind):
    rng = np.random.default_rng(0)
    path = tmp_path / f"{kind}.png"
    if kind == "grey16":
        Image.fromarray((rng.random((70, 90)) * 65535).astype(np.uint16)).save(path)
    else:
        Image.fromarray(rng.integers(0, 255, (53, 37, 4), dtype=np.uint8), "RGBA").save(path)
    data = load_input(path, name=path.name)
    data = make_input(data.image, max_side=SIDE, name=data.name)
    for entry in RUNNABLE:
        lesson = _prepare(entry, data)
        if entry.key in ("proposals", "focal_loss"):
            assert any("No ground-truth box" in n for n in lesson.notes)


def test_a_project_image_brings_its_boxes_and_masks(tmp_path):
    from engine.annotations.model import Annotation, Box, Polygon

    img = np.zeros((40, 60, 3), np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(img).save(path)
    anns = [Annotation(1, 1, Box(5, 5, 25, 30)), Annotation(1, 2, Polygon([(30, 5), (55, 5), (55, 35), (30, 35)]))]
    data = load_input(path, anns, {1: "cat", 2: "dog"})
    np.testing.assert_allclose(data.boxes, [[5, 5, 25, 30], [30, 5, 55, 35]])
    assert data.names == ["cat", "dog"]
    assert not (data.instances == 1).any()  # a box is not a mask
    assert (data.instances == 2).sum() > 500
