"""Our YOLO's grid maths: target encoding, decoding, the responsible predictor, the loss."""
import numpy as np
import pytest
import torch

from engine.models.yolo import (YoloGridNet, build_yolo, decode_grid, encode_targets, grid_candidates,
                                grid_size, responsible, yolo_loss)

W, H = 100, 80
S, B, C = 4, 2, 3
# pixel xyxy boxes whose centres fall in different cells, and their classes
GT_PX = np.array([[5, 4, 30, 24], [55, 10, 95, 70], [20, 45, 45, 78]], np.float32)
GT_LABELS = np.array([2, 0, 1])


def _normalised(boxes_px):
    return torch.from_numpy(boxes_px / np.array([W, H, W, H], np.float32))


def _perfect_prediction(target: torch.Tensor) -> torch.Tensor:
    """The grid a perfect model would output for ``target`` [N, S, S, 5 + C]: predictor 0 is the
    box with confidence 1 where there is an object; predictor 1 repeats the box with confidence 0."""
    n = target.shape[0]
    pred = torch.zeros((n, S, S, B * 5 + C))
    obj = target[..., 4]
    for b in range(B):
        pred[..., b * 5: b * 5 + 4] = target[..., :4]
    pred[..., 4] = obj
    pred[..., B * 5:] = torch.where(obj[..., None] > 0, target[..., 5:], torch.full_like(target[..., 5:], 1 / C))
    return pred


def _target():
    return encode_targets([_normalised(GT_PX)], [torch.from_numpy(GT_LABELS)], S, C)


def test_encode_then_decode_a_perfect_prediction_gives_back_the_boxes():
    target = _target()
    assert target.shape == (1, S, S, 5 + C)
    assert int(target[..., 4].sum()) == 3
    # box 0: centre (17.5, 14) px -> cell column 0, row 0, offsets (0.7, 0.7)
    cell = target[0, 0, 0]
    np.testing.assert_allclose(cell[:5].numpy(), [0.7, 0.7, np.sqrt(0.25), np.sqrt(0.25), 1.0], atol=1e-6)
    assert cell[5:].tolist() == [0, 0, 1]
    boxes, scores, labels = grid_candidates(_perfect_prediction(target)[0], B, W, H, score_threshold=0.5)
    order = np.argsort(boxes[:, 0].numpy())
    expected = np.argsort(GT_PX[:, 0])
    np.testing.assert_allclose(boxes.numpy()[order], GT_PX[expected], atol=1e-4)
    assert labels.numpy()[order].tolist() == GT_LABELS[expected].tolist()
    np.testing.assert_allclose(scores.numpy(), 1.0)


def test_candidates_are_every_box_and_class_of_decode_grid_scoring_above_the_threshold():
    pred = torch.rand(S, S, B * 5 + C, generator=torch.Generator().manual_seed(0))
    pred[..., B * 5:] = torch.softmax(pred[..., B * 5:] * 4, dim=-1)
    boxes, scores, labels = grid_candidates(pred, B, W, H, score_threshold=0.1)
    # the reference: decode every box of the grid, score every (box, class), keep the pairs
    # above the threshold in (row, class) order, scale to pixels and clip to the image
    all_boxes, conf, probs = decode_grid(pred, B)
    all_scores = conf[:, None] * probs
    rows, classes = torch.nonzero(all_scores >= 0.1, as_tuple=True)
    expected = (all_boxes[rows] * torch.tensor([W, H, W, H])).numpy()
    expected = np.clip(expected, 0, [W, H, W, H])
    assert 0 < len(boxes) < S * S * B * C
    np.testing.assert_allclose(boxes.numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), all_scores[rows, classes].numpy(), rtol=1e-6)
    assert labels.tolist() == classes.tolist()


def test_decode_grid_rows_run_over_cells_then_predictors():
    pred = _perfect_prediction(_target())[0]
    boxes, conf, probs = decode_grid(pred, B)
    assert boxes.shape == (S * S * B, 4) and conf.shape == (S * S * B,) and probs.shape == (S * S * B, C)
    # cell (row 0, col 0) is rows 0 and 1; its object is GT box 0 (normalised)
    np.testing.assert_allclose(boxes[0].numpy(), GT_PX[0] / [W, H, W, H], atol=1e-6)
    assert conf[0] == 1 and conf[1] == 0


def test_two_centres_in_one_cell_keep_the_larger_box():
    small = torch.tensor([[0.01, 0.01, 0.11, 0.11]])
    large = torch.tensor([[0.0, 0.0, 0.2, 0.2]])
    target = encode_targets([torch.cat([large, small])], [torch.tensor([1, 2])], S, C)
    assert int(target[..., 4].sum()) == 1
    assert target[0, 0, 0, 5:].tolist() == [0, 1, 0]
    np.testing.assert_allclose(target[0, 0, 0, 2].item(), np.sqrt(0.2), atol=1e-6)


def test_loss_is_zero_for_a_perfect_prediction_and_positive_otherwise():
    target = _target()
    perfect = _perfect_prediction(target)
    terms = yolo_loss(perfect, target, B)
    assert set(terms) == {"loss", "loss_coord", "loss_obj", "loss_noobj", "loss_class"}
    assert terms["loss"].item() < 1e-10

    shifted = perfect.clone()
    shifted[0, 0, 0, 0] += 0.2  # x of the responsible predictor of box 0
    shifted[0, 0, 0, 5] = shifted[0, 0, 0, 0]  # and its twin, so predictor 0 stays responsible
    t = yolo_loss(shifted, target, B)
    assert t["loss_coord"].item() == pytest.approx(5.0 * 0.2 ** 2, rel=1e-4)  # responsible one only
    assert t["loss_obj"].item() > 0  # confidence 1 but the box now overlaps less than IoU 1
    assert t["loss"] > t["loss_coord"]

    wrong_class = perfect.clone()
    wrong_class[0, 0, 0, B * 5:] = torch.tensor([1.0, 0.0, 0.0])
    assert yolo_loss(wrong_class, target, B)["loss_class"].item() == pytest.approx(2.0)

    ghost = perfect.clone()
    ghost[0, 3, 3, 4] = 0.6  # confidence in an empty cell
    assert yolo_loss(ghost, target, B, lambda_noobj=0.5)["loss_noobj"].item() == pytest.approx(0.5 * 0.36)


def test_the_responsible_predictor_is_the_one_with_the_highest_iou():
    target = _target()
    pred = _perfect_prediction(target)
    pred[0, 0, 0, 0:4] = torch.tensor([0.1, 0.1, 0.1, 0.1])  # predictor 0 of box 0's cell: way off
    boxes = pred[..., : B * 5].unflatten(-1, (B, 5))
    mask, iou = responsible(boxes, target)
    assert mask[0, 0, 0].tolist() == [0.0, 1.0]
    assert iou[0, 0, 0, 1].item() == pytest.approx(1.0, abs=1e-5)
    assert mask.sum().item() == 3  # one per object, none in empty cells


def test_model_output_is_the_grid_with_values_in_0_1():
    model = build_yolo({"pretrained": False, "input_size": 64, "head_channels": 16}, C).eval()
    assert isinstance(model, YoloGridNet)
    assert grid_size({"input_size": 64, "feature": "c4"}) == 4
    assert grid_size({"input_size": 448, "feature": "c5"}) == 14
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 4, 4, B * 5 + C)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    torch.testing.assert_close(out[..., B * 5:].sum(-1), torch.ones(2, 4, 4))


def test_a_fixed_grid_size_is_honoured():
    model = build_yolo({"pretrained": False, "grid": 3, "head_channels": 8}, 2).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3, 3, B * 5 + 2)


def test_bad_feature_name_is_refused_with_the_field():
    with pytest.raises(ValueError, match="feature"):
        build_yolo({"pretrained": False, "feature": "c9"}, 2)
