"""The theoretical receptive field of the backbone's layers, computed from the layer arithmetic, is
exactly where a gradient probe is non-zero."""
import numpy as np
import pytest
import torch

from engine.lessons.receptive_field import SHOWN_LAYERS, gradient_map, probe_model, theoretical_fields

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def probe():
    return probe_model()


def _support(grad):
    ys, xs = np.nonzero(grad > 0)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_field_sizes_follow_the_stage_table(probe):
    fields = {f.name: f for f in theoretical_fields(probe, (224, 224))}
    sizes = {name: fields[name].size[0] for name in SHOWN_LAYERS}
    assert sizes == {"stem": 3, "block 3 (c2)": 19, "block 5 (c3)": 67, "block 11 (c4)": 339, "block 16 (c5)": 851}
    assert [fields[name].jump[0] for name in SHOWN_LAYERS] == [2, 4, 8, 16, 32]
    assert fields["block 16 (c5)"].out_hw == (7, 7)


@pytest.mark.parametrize("hw, layers", [((160, 160), SHOWN_LAYERS[:3]), ((384, 384), SHOWN_LAYERS[3:4])])
def test_gradient_probe_is_non_zero_exactly_on_the_theoretical_field(probe, hw, layers):
    fields = {f.name: f for f in theoretical_fields(probe, hw)}
    x = torch.full((1, 3, *hw), 0.01)
    for name in layers:
        f = fields[name]
        for row, col in ((f.out_hw[0] // 2, f.out_hw[1] // 2), (0, 1)):  # a central unit and one at the border
            grad = gradient_map(probe, x, name, row, col)
            assert _support(grad) == f.box(row, col, hw), (name, row, col)


def test_unit_at_picks_the_unit_centred_nearest_the_click(probe):
    f = {f.name: f for f in theoretical_fields(probe, (160, 160))}["block 5 (c3)"]
    row, col = f.unit_at(100, 20)
    x1, y1, x2, y2 = f.box(row, col)
    assert abs((x1 + x2) / 2 - 100) <= f.jump[1] / 2 and abs((y1 + y2) / 2 - 20) <= f.jump[0] / 2


def test_any_layer_is_picked_on_the_plot_and_its_fields_drawn_on_the_image():
    from engine.jobs import Job, run_job_sync
    from engine.lessons.base import make_input
    from engine.lessons.receptive_field import ReceptiveFieldLesson

    lesson = ReceptiveFieldLesson()
    img = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    assert run_job_sync(Job("rf", lesson.prepare, data=make_input(img))).state == "finished"
    plot = len(SHOWN_LAYERS) + 1
    assert lesson.step_count == plot + 1 and "block 8" in lesson.step(plot - 1).caption
    assert lesson.press(plot, 0, 12.2, 100.0) == "background"  # layer 12 on the curve
    assert lesson.chosen == "block 12"
    assert run_job_sync(Job("click", lesson.background)).state == "finished"
    caption = lesson.step(plot - 1).caption
    assert "block 12" in caption and "403×403" in caption and "click to compute" not in caption
