"""The one ground-truth rule (engine.data.truth) and the objects built from it (engine.data.objects)."""
import numpy as np

from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box, Point, Polygon
from engine.data.objects import ground_truth_boxes, ground_truth_objects
from engine.data.semantic import rasterize
from engine.data.truth import MODEL_SCORE, accepted, as_proposal, ground_truth, is_ground_truth, is_proposal


def test_a_proposal_is_marked_not_scored_and_accepting_keeps_the_score_as_model_score():
    drawn = Annotation(1, 1, Box(0, 0, 4, 4))
    imported = Annotation(1, 1, Box(0, 0, 4, 4), source="coco", score=0.7)  # a score alone decides nothing
    guess = as_proposal(Annotation(1, 1, Box(0, 0, 4, 4), source="yolo:run", score=0.9, attributes={"note": "x"}))
    assert is_ground_truth(drawn) and is_ground_truth(imported)
    assert is_proposal(guess) and not is_ground_truth(guess)
    assert ground_truth([drawn, guess, imported]) == [drawn, imported]

    taken = accepted(guess)
    assert is_ground_truth(taken)
    assert taken.score is None and taken.attributes == {"note": "x", MODEL_SCORE: 0.9}
    assert taken.source == "yolo:run"  # the origin stays visible
    assert accepted(drawn) is drawn


def test_objects_group_instance_parts_skip_proposals_and_keep_hidden_shapes():
    mask = np.zeros((20, 30), np.uint8)
    mask[2:6, 3:9] = 1
    anns = [
        Annotation(1, 1, Box(3, 2, 9, 6), instance_id=7),
        Annotation(1, 1, encode_mask(mask), instance_id=7),          # the same object as the box
        Annotation(1, 2, encode_mask(mask)),                          # mask only: its bounds
        Annotation(1, 2, Box(0, 0, 5, 5), score=0.9, source="yolo:x", attributes={"proposal": True}),
        Annotation(1, 1, Point(3, 3)),                                # no area: no object
        Annotation(1, 1, Box(10, 10, 12, 12), hidden=True),           # hidden is a view state
        Annotation(1, 2, Box(20, 12, 26, 18), score=0.6, source="coco"),  # imported with a score: truth
        Annotation(1, 1, Box(40, 40, 50, 50)),                        # outside the image: no object
    ]
    boxes, names = ground_truth_boxes(anns, {1: "cat", 2: "dog"}, 20, 30)
    assert names == ["cat", "dog", "cat", "dog"]
    np.testing.assert_allclose(boxes, [[3, 2, 9, 6], [3, 2, 9, 6], [10, 10, 12, 12], [20, 12, 26, 18]])
    only_dogs, names = ground_truth_boxes(anns, {2: "dog"}, 20, 30)
    assert names == ["dog", "dog"] and len(only_dogs) == 2


def test_an_objects_mask_is_the_union_of_its_masks_and_polygons_and_unet_paints_the_same():
    left = np.zeros((16, 16), np.uint8)
    left[2:6, 2:6] = 1
    right = np.zeros((16, 16), np.uint8)
    right[2:6, 8:12] = 1
    anns = [Annotation(1, 3, encode_mask(left), instance_id=1), Annotation(1, 3, encode_mask(right), instance_id=1),
            Annotation(1, 3, Polygon(((2, 10), (6, 10), (6, 14), (2, 14))))]
    objects = ground_truth_objects(anns, 16, 16)
    assert len(objects) == 2 and objects[0].box == (2.0, 2.0, 12.0, 6.0)
    np.testing.assert_array_equal(objects[0].mask(16, 16), left | right)
    classes, instances = rasterize(anns, [3], 16, 16)
    assert set(np.unique(instances[(left | right) > 0])) == {instances[2, 2]}  # one object, both parts
    assert (classes > 0).sum() == (left | right).sum() + objects[1].mask(16, 16).sum()


def test_hidden_shapes_train_unet_and_proposals_do_not():
    anns = [Annotation(1, 1, Box(0, 0, 4, 4), hidden=True),
            Annotation(1, 1, Box(4, 4, 8, 8), attributes={"proposal": True}, score=0.99)]
    classes, _ = rasterize(anns, [1], 8, 8)
    assert classes[:4, :4].all() and not classes[4:, 4:].any()
