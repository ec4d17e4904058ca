"""Pre-labelling snaps a detector's loose boxes to the objects' edges, so that a reviewer can accept
them as they are; a snap that would jump to another object, and boxes that come with the model's
own outline, are left alone."""
import numpy as np

from engine.annotations.model import Annotation, Box, MaskRLE
from engine.assist.snap import _iou, snap_box, snap_proposals
from engine.demo.shapes import mask_box, render_scene


def scenes(n, seed=3):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        image, objects = render_scene(rng)
        yield image, [mask_box(m) for _, m in objects]


def loose(box, rng, px=3.0):
    return tuple(float(v) + rng.uniform(-px, px) for v in (box.x1, box.y1, box.x2, box.y2))


def test_boxes_three_pixels_off_snap_back_to_the_tight_box_of_the_object():
    rng = np.random.default_rng(0)
    before, after = [], []
    for image, boxes in scenes(40):
        for b in boxes:
            truth = (b.x1, b.y1, b.x2, b.y2)
            guess = loose(b, rng)
            before.append(_iou(guess, truth))
            after.append(_iou(snap_box(image, guess), truth))
    before, after = np.array(before), np.array(after)
    assert np.mean(before >= 0.9) < 0.3  # what a reviewer would have to fix by hand
    assert np.mean(after >= 0.9) > 0.8
    assert np.median(after) > 0.95


def test_a_snap_to_something_else_keeps_the_models_box():
    flat = np.full((64, 64, 3), 90, np.uint8)
    flat[40:60, 40:60] = (250, 20, 20)  # an object away from the proposed box
    box = (2.0, 2.0, 20.0, 20.0)
    assert snap_box(flat, box) == box
    assert snap_box(flat, (1.0, 1.0, 3.0, 3.0)) == (1.0, 1.0, 3.0, 3.0)  # too small to model colours


def test_only_lone_boxes_snap_a_box_with_the_models_mask_keeps_it():
    image, boxes = next(scenes(1, seed=5))
    b = boxes[0]
    rng = np.random.default_rng(1)
    off = Box(*loose(b, rng))
    mask = MaskRLE(size=(128, 128), counts="0")  # any outline of the same object
    anns = [Annotation(1, 1, off, instance_id=7, score=0.9, attributes={"proposal": True}),
            Annotation(1, 1, mask, instance_id=7, score=0.9, attributes={"proposal": True}),
            Annotation(1, 1, off, instance_id=8, score=0.8, attributes={"proposal": True})]
    out = snap_proposals(image, anns)
    assert out[0].geometry == off and out[1].geometry == mask
    snapped = out[2].geometry
    assert _iou((snapped.x1, snapped.y1, snapped.x2, snapped.y2), (b.x1, b.y1, b.x2, b.y2)) > _iou(
        (off.x1, off.y1, off.x2, off.y2), (b.x1, b.y1, b.x2, b.y2))
    assert out[2].attributes == {"proposal": True} and out[2].score == 0.8
