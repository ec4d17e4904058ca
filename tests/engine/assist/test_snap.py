"""Pre-labelling snaps a detector's loose boxes to the objects' edges, so that a reviewer can accept
them as they are (a Mask R-CNN object's box too, its mask stays the model's); a snap that would
jump to another object is left alone."""
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


def test_every_box_snaps_a_mask_rcnn_objects_box_too_while_its_mask_stays_the_models():
    image, boxes = next(scenes(1, seed=5))
    b = boxes[0]
    truth = (b.x1, b.y1, b.x2, b.y2)
    rng = np.random.default_rng(1)
    off = Box(*loose(b, rng))
    mask = MaskRLE(size=(128, 128), counts="0")  # any outline of the same object
    anns = [Annotation(1, 1, off, instance_id=7, score=0.9, attributes={"proposal": True}),
            Annotation(1, 1, mask, instance_id=7, score=0.9, attributes={"proposal": True}),
            Annotation(1, 1, off, instance_id=8, score=0.8, attributes={"proposal": True})]
    out = snap_proposals(image, anns)
    assert out[1].geometry == mask
    before = _iou((off.x1, off.y1, off.x2, off.y2), truth)
    for k in (0, 2):
        g = out[k].geometry
        assert _iou((g.x1, g.y1, g.x2, g.y2), truth) > before
        assert out[k].attributes == {"proposal": True} and out[k].score == anns[k].score
        assert out[k].instance_id == anns[k].instance_id
