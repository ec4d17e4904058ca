"""engine.viz.yolo_grid: the grid explained in pixels, and the responsible cell/predictor."""
import numpy as np
import pytest

from engine.viz.yolo_grid import explain_grid

S, B, C = 4, 2, 3
W, H = 200, 100


def _grid():
    """A hand-made grid: cell (row 1, col 2) predicts a box centred in it (predictor 1 close to
    the object, predictor 0 far off); every cell's class 1 is the most probable."""
    g = np.zeros((S, S, B * 5 + C), np.float32)
    g[..., B * 5:] = [0.2, 0.7, 0.1]
    # predictor 0 of cell (1, 2): centre of the cell, small box; predictor 1: the object's box
    g[1, 2, 0:5] = [0.5, 0.5, np.sqrt(0.05), np.sqrt(0.05), 0.3]
    g[1, 2, 5:10] = [0.5, 0.5, np.sqrt(0.25), np.sqrt(0.5), 0.9]
    return g


def test_boxes_and_confidences_in_pixels():
    ex = explain_grid(_grid(), W, H, B)
    assert ex.grid == S and ex.cell_size == (50.0, 25.0)
    assert ex.cell_rect(1, 2) == (100.0, 25.0, 150.0, 50.0)
    # predictor 1: centre (125, 37.5) px, size 0.25 * 200 x 0.5 * 100
    np.testing.assert_allclose(ex.boxes[1, 2, 1], [100, 12.5, 150, 62.5], atol=1e-4)
    assert ex.confidence[1, 2].tolist() == pytest.approx([0.3, 0.9])
    assert (ex.class_index == 1).all() and np.allclose(ex.class_prob, 0.7)
    above = ex.boxes_above(0.5)
    assert [(r, c, b) for r, c, b, _, _ in above] == [(1, 2, 1)]


def test_the_responsible_cell_holds_the_centre_and_the_predictor_has_the_best_iou():
    gt = np.array([[100, 12.5, 150, 62.5], [0, 60, 40, 100]])
    ex = explain_grid(_grid(), W, H, B, gt)
    first, second = ex.responsible
    assert (first.row, first.col, first.predictor) == (1, 2, 1) and first.iou == pytest.approx(1.0)
    assert (second.gt_index, second.row, second.col) == (1, 3, 0)


def test_a_box_reaching_past_the_image_is_clipped():
    g = _grid()
    g[0, 0, 0:5] = [0.0, 0.0, 0.5, 0.5, 1.0]
    ex = explain_grid(g, W, H, B)
    assert ex.boxes[0, 0, 0, 0] == 0 and ex.boxes[0, 0, 0, 1] == 0


def test_a_grid_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="grid_output"):
        explain_grid(np.zeros((4, 5, 13)), W, H, B)
