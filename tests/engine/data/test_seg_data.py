"""Annotations become class/instance maps correctly; augmentation keeps image and mask aligned."""
import numpy as np
import pytest
import torch

from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box, Point, Polygon
from engine.data.augment import augment_sample, segmentation_augmentation
from engine.data.datasets import SegmentationDataset, load_segmentation_samples, open_project, resolve_classes
from engine.data.semantic import rasterize
from tests.engine.data.seg_project import make_seg_project


def test_polygon_box_and_rle_paint_their_class_index():
    rle_mask = np.zeros((10, 12), np.uint8)
    rle_mask[6:9, 1:4] = 1
    anns = [
        Annotation(1, 7, Polygon(((0, 0), (4, 0), (4, 4), (0, 4)))),  # category 7 -> class 2
        Annotation(1, 3, Box(6, 1, 10, 3)),                               # category 3 -> class 1
        Annotation(1, 3, encode_mask(rle_mask)),
        Annotation(1, 9, Box(0, 0, 12, 10)),                              # not chosen: ignored
        Annotation(1, 3, Point(5, 5)),                                    # no area: ignored
    ]
    cls, inst = rasterize(anns, [3, 7], 10, 12)
    want = np.zeros((10, 12), np.uint8)
    want[0:4, 0:4] = 2
    want[1:3, 6:10] = 1
    want[6:9, 1:4] = 1
    np.testing.assert_array_equal(cls, want)
    assert len(np.unique(inst)) == 4  # background + 3 objects
    assert len(np.unique(inst[6:9, 1:4])) == 1 and inst[6, 1] != inst[1, 6]


def test_one_object_drawn_as_box_and_mask_uses_the_mask():
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 1
    anns = [Annotation(1, 1, Box(0, 0, 8, 8), instance_id=5), Annotation(1, 1, encode_mask(m), instance_id=5)]
    cls, inst = rasterize(anns, [1], 8, 8)
    assert cls.sum() == 4 and set(np.unique(inst)) == {0, 1}


def test_small_objects_stay_on_top_of_large_ones_and_proposals_are_skipped():
    anns = [Annotation(1, 2, Box(3, 3, 5, 5)), Annotation(1, 1, Box(0, 0, 8, 8)),
            Annotation(1, 2, Box(6, 6, 8, 8), attributes={"proposal": True})]
    cls, _ = rasterize(anns, [1, 2], 8, 8)
    assert cls[4, 4] == 2 and cls[0, 0] == 1 and cls[7, 7] == 1


def test_wrong_mask_size_names_the_annotation():
    bad = Annotation(3, 1, encode_mask(np.ones((4, 4), np.uint8)), id=42)
    with pytest.raises(ValueError, match="annotation 42"):
        rasterize([bad], [1], 8, 8)


def test_augmentation_moves_image_and_mask_together():
    torch.manual_seed(0)
    mask = torch.zeros(64, 64, dtype=torch.int64)
    mask[10:30, 12:40] = 1
    mask[40:58, 20:34] = 2
    image = torch.stack([(mask == 1).float(), (mask == 2).float(), torch.zeros(64, 64)]) * 0.8 + 0.1
    transform = segmentation_augmentation(crop=48, rotation_deg=30, shift=0.1, elastic_p=1.0)
    moved = 0
    for _ in range(6):
        img2, mask2 = augment_sample(transform, image, mask)
        assert img2.shape == (3, 48, 48) and mask2.shape == (48, 48) and mask2.dtype == torch.int64
        assert set(mask2.unique().tolist()) <= {0, 1, 2}
        # Recover the class from the (jittered) colours: red or green above blue marks an object.
        red, green = img2[0] - img2[2], img2[1] - img2[2]
        half = 0.5 * max(red.max().item(), green.max().item())
        from_image = torch.where(red > half, 1, torch.where(green > half, 2, 0))
        agree = (from_image == mask2).float().mean().item()
        assert agree > 0.95, agree
        moved += int(not torch.equal(mask2, mask[:48, :48]))
    assert moved >= 5  # it really transforms


def test_dataset_from_project(tmp_path):
    project = make_seg_project(tmp_path, n_train=3, n_val=1, size=40)
    store = open_project(project)
    cats = resolve_classes(store, ["square", "disc"])
    samples = load_segmentation_samples(store, cats, "train")
    store.close()
    assert len(samples) == 3
    ds = SegmentationDataset(samples, 3, transform=segmentation_augmentation(crop=32))
    image, target, weight = ds[0]
    assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
    assert target.shape == weight.shape == (32, 32) and target.dtype == torch.int64
    assert (weight > 0).all()
    # classes follow the chosen order: square = 1, disc = 2
    s = samples[0]
    disc_pixel = s.image[..., 0] > 200
    assert (s.class_map[disc_pixel] == 2).mean() > 0.95


def test_unknown_category_is_bad_input(tmp_path):
    from engine.annotations.errors import BadInput

    project = make_seg_project(tmp_path, n_train=1, n_val=0, size=32)
    store = open_project(project)
    with pytest.raises(BadInput, match="no category named 'cat'"):
        resolve_classes(store, ["cat"])
    store.close()


def test_grid_elastic_moves_pixels_by_about_sigma():
    from torchvision import tv_tensors

    from engine.data.augment import GridElastic

    torch.manual_seed(0)
    mask = torch.zeros(96, 96, dtype=torch.int64)
    mask[44:52, 44:52] = 1
    shifts = []
    for _ in range(40):
        out = GridElastic(sigma_px=3.0)(tv_tensors.Mask(mask))
        ys, xs = torch.nonzero(out, as_tuple=True)
        assert 0 < len(ys) < 2 * 64  # still one small blob, neither lost nor smeared
        shifts.append(float(torch.hypot(ys.float().mean() - 47.5, xs.float().mean() - 47.5)))
    # a 2-D normal displacement with sigma 3 px moves by 3 * sqrt(pi / 2) = 3.8 px on average
    assert 2.0 < sum(shifts) / len(shifts) < 5.5
