"""Inside the R-CNN: anchors at a pixel, objectness maps, proposals around the RPN's NMS, RoI Align/Pool."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou, nms, roi_align, roi_pool

from engine.models.rcnn import build_rcnn
from engine.viz.rpn import (RcnnInspection, bilinear_sample, roi_align_numpy, roi_align_points,
                            roi_pool_cells, roi_pool_numpy)

TINY = {"pretrained": False, "fpn_channels": 8, "min_size": 64, "max_size": 96,
        "anchor_sizes": [[16, 24], [32, 48], [64, 96], [128, 192]], "aspect_ratios": [0.5, 1.0, 2.0],
        "representation_size": 16, "rpn_pre_nms_top_n_test": 60, "rpn_post_nms_top_n_test": 30}


@pytest.fixture(scope="module")
def inspection():
    torch.manual_seed(0)
    image = (np.random.default_rng(0).random((48, 72, 3)) * 255).astype(np.uint8)
    return RcnnInspection(build_rcnn(TINY, 2), image)


def test_anchors_at_a_pixel_are_sizes_times_ratios_per_level_and_sit_on_its_cell(inspection):
    levels = inspection.anchors_at(30.0, 20.0)
    assert [lv["level"] for lv in levels] == ["0", "1", "2", "pool"]
    assert [len(lv["boxes"]) for lv in levels] == [2 * 3] * 4  # scales x aspect ratios
    sy, sx = inspection.scale_yx  # 48x72 is resized to 64x96: 4/3 resized px per original px
    assert sy == pytest.approx(64 / 48) and sx == pytest.approx(96 / 72)
    level0 = levels[0]
    assert level0["stride"] == 8 and level0["cell"] == (int(20 * sy // 8), int(30 * sx // 8))
    boxes = level0["boxes"]
    centres_x = (boxes[:, 0] + boxes[:, 2]) / 2 * sx
    # torchvision centres a cell's anchors on its top-left corner: col * stride (resized px)
    np.testing.assert_allclose(centres_x, level0["cell"][1] * 8, atol=0.6)
    w, h = (boxes[:, 2] - boxes[:, 0]) * sx, (boxes[:, 3] - boxes[:, 1]) * sy
    np.testing.assert_allclose(np.sort(np.sqrt(w * h)), [16, 16, 16, 24, 24, 24], rtol=0.08)
    np.testing.assert_allclose(np.sort(h / w), [0.5, 0.5, 1, 1, 2, 2], rtol=0.1)


def test_anchor_sizes_must_have_the_same_count_on_every_level():
    with pytest.raises(ValueError, match="anchor_sizes"):
        build_rcnn({**TINY, "anchor_sizes": [[16, 24], [32], [64], [128]]}, 2)


def test_objectness_maps_have_the_level_grid_and_are_probabilities(inspection):
    for name, size in zip(inspection.level_names, [(8, 12), (4, 6), (2, 3), (1, 2)]):
        heat = inspection.objectness(name)
        assert heat.shape == size and heat.dtype == np.float32
        assert ((heat > 0) & (heat < 1)).all()
    x, y, w, h = inspection.level_rect("0")
    assert (x, y) == (0, 0) and w == pytest.approx(72) and h == pytest.approx(48)


def test_proposals_after_the_rpn_nms_are_a_subset_without_big_overlaps(inspection):
    p = inspection.proposals()
    before, after = p["before_nms"], p["after_nms"]
    assert len(before["boxes"]) > len(after["boxes"]) > 0
    assert (np.diff(before["scores"]) <= 1e-7).all() and (np.diff(after["scores"]) <= 1e-7).all()
    for box in after["boxes"]:
        assert np.abs(before["boxes"] - box).max(axis=1).min() < 1e-3
    # the RPN runs NMS per level: within a level no two kept proposals overlap above its IoU
    levels = {tuple(np.round(b, 3)): lv for b, lv in zip(before["boxes"], before["levels"])}
    kept = torch.from_numpy(after["boxes"])
    kept_levels = np.array([levels[tuple(np.round(b, 3))] for b in after["boxes"]])
    for lv in set(kept_levels.tolist()):
        same = kept[torch.from_numpy(kept_levels == lv)]
        iou = box_iou(same, same).fill_diagonal_(0)
        assert float(iou.max()) <= p["nms_iou"] + 1e-4
    top = inspection.proposals(top_k=5)
    assert len(top["before_nms"]["boxes"]) == 5 and len(top["after_nms"]["boxes"]) == 5
    np.testing.assert_allclose(top["after_nms"]["boxes"], after["boxes"][:5])
    assert len(nms(kept, torch.from_numpy(after["scores"]), 1.0)) == len(kept)


@pytest.mark.parametrize("box,aligned,ratio,scale", [
    ([1.3, 2.2, 7.9, 8.4], False, 2, 1.0),
    ([-0.5, 1.0, 12.5, 10.0], True, 0, 1.0),    # adaptive grid, box leaving the map
    ([3.0, 3.0, 3.2, 3.1], False, 2, 1.0),      # tiny box forced to one cell
    ([5.0, 3.0, 19.0, 15.0], False, 2, 0.5),    # stride 2
])
def test_our_bilinear_roi_align_matches_torchvision(box, aligned, ratio, scale):
    feature = np.random.default_rng(1).random((3, 9, 11)).astype(np.float32)
    ours = roi_align_numpy(feature, box, scale, 7, ratio, aligned)
    theirs = roi_align(torch.from_numpy(feature)[None], torch.tensor([[0.0, *box]]), 7, scale, ratio,
                       aligned)[0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    pooled = roi_pool(torch.from_numpy(feature)[None], torch.tensor([[0.0, *box]]), 7, scale)[0].numpy()
    np.testing.assert_array_equal(roi_pool_numpy(feature, box, scale, 7), pooled)


def test_sampling_points_sit_inside_their_bins_and_pool_cells_are_whole_cells():
    ys, xs, y_edges, x_edges = roi_align_points([2.0, 1.0, 16.0, 8.0], 1.0, output_size=7, sampling_ratio=2)
    assert ys.shape == (7, 2) and xs.shape == (7, 2)
    np.testing.assert_allclose(x_edges, np.linspace(2, 16, 8))
    assert ((ys > y_edges[:-1, None]) & (ys < y_edges[1:, None])).all()
    np.testing.assert_allclose(xs[0], [2.5, 3.5])  # bins of 2 cells, points at 1/4 and 3/4
    hs, he, ws, we = roi_pool_cells([2.4, 1.0, 15.6, 8.0], 1.0, (9, 20), output_size=7)
    assert ws[0] == 2 and we[-1] == 17  # corners rounded to whole cells (the quantization)
    assert (he > hs).all() and hs.dtype.kind == "i"
    feature = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    assert bilinear_sample(feature, 0.5, 0.5)[0] == pytest.approx((0 + 1 + 4 + 5) / 4)
    assert bilinear_sample(feature, -1.5, 0.0)[0] == 0  # beyond the one-cell margin


def test_roi_sampling_on_the_model_features_matches_the_torchvision_ops(inspection):
    box = [10.3, 6.2, 52.7, 40.9]
    level = inspection.level_for_box(box)
    assert level == "0"  # small box -> finest pooled level, as torchvision's LevelMapper decides
    r = inspection.roi_sampling(box)
    assert r.level == "0" and r.stride == 8
    assert r.align_out.shape == (8, 7, 7) and r.pool_out.shape == (8, 7, 7)
    np.testing.assert_allclose(r.align_numpy, r.align_out, atol=1e-5)
    assert r.align_mean.shape == (7, 7) and r.feature_fm.shape == (8, 12)
    sy, sx = inspection.scale_yx
    np.testing.assert_allclose(r.box_fm, [10.3 * sx / 8, 6.2 * sy / 8, 52.7 * sx / 8, 40.9 * sy / 8], rtol=1e-5)
    # the model's own pooler gives the same 7x7 for this box
    feats = inspection.features
    boxes = [torch.tensor([[10.3 * sx, 6.2 * sy, 52.7 * sx, 40.9 * sy]])]
    with torch.no_grad():
        pooled = inspection.model.roi_heads.box_roi_pool(feats, boxes, inspection.images.image_sizes)
    np.testing.assert_allclose(pooled[0].numpy(), r.align_out, atol=1e-5)
    assert inspection.roi_sampling(box, level="1").level == "1"
