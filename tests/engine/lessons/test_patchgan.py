"""The PatchGAN lesson measures pix2pix's own discriminator: 70 x 70 patches for three stride-2
layers, 8 px apart, a 30 x 30 grid on a 256 x 256 image; with a checkpoint it shows D's verdicts."""
import numpy as np
import pytest
import torch
from skimage import data

from engine.jobs import Job, run_job_sync
from engine.lessons.base import make_input
from engine.lessons.patchgan import PatchGANLesson, coverage, discriminator, layer_geometry
from engine.models.checkpoint import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_three_layers_judge_70_pixel_patches_8_pixels_apart():
    layers = layer_geometry(discriminator(3), (256, 256))
    assert [g.size for g in layers] == [4, 10, 22, 46, 70]
    assert layers[-1].jump == 8 and layers[-1].out_hw == (30, 30)
    assert [layer_geometry(discriminator(n), (256, 256))[-1].size for n in (1, 2, 4)] == [16, 34, 142]


@pytest.mark.parametrize("hw", [(256, 256), (53, 37), (300, 451)])
def test_the_output_grid_is_what_the_discriminator_really_produces(hw):
    D = discriminator(3, ndf=4)
    with torch.no_grad():
        out = D(torch.zeros(1, 6, *hw))
    assert layer_geometry(D, hw)[-1].out_hw == tuple(out.shape[-2:])


def test_an_interior_pixel_is_judged_by_many_patches():
    g = layer_geometry(discriminator(3), (256, 256))[-1]
    cov = coverage(g, (256, 256))
    assert cov.max() == 81 and cov[128, 128] >= 64 and cov[0, 0] == 9  # 70 / 8: 8 or 9 windows per axis


def test_without_a_checkpoint_the_lesson_says_so_and_a_click_picks_a_patch():
    lesson = PatchGANLesson()
    assert run_job_sync(Job("p", lesson.prepare, data=make_input(data.chelsea(), max_side=256))).state == "finished"
    assert any("No pix2pix checkpoint" in n for n in lesson.notes)
    assert "No pix2pix checkpoint" in lesson.steps[-1].caption
    grid = lesson.step_count - 2
    assert lesson.press(grid, 0, 10, 10) and lesson.unit == (0, 0)
    assert "unit (0, 0)" in [getattr(i, "label", "") for i in lesson.step(grid).scene.panels[0].items]


def test_a_colorization_checkpoint_shows_p_real_per_patch(tmp_path):
    from engine.models.pix2pix import COLORIZE_CPU_PRESET, build_pix2pix

    cfg = dict(COLORIZE_CPU_PRESET, width=4, depth=3, ndf=4)
    torch.manual_seed(0)
    path = tmp_path / "colorize-tiny.ckpt"
    meta = {"family": "colorize", "classes": [], "config": cfg, "metrics": {}}
    save_checkpoint(path, build_pix2pix(cfg).state_dict(), meta)
    lesson = PatchGANLesson()
    img = make_input(data.coffee(), max_side=100)
    outcome = run_job_sync(Job("p", lesson.prepare, data=img, model_path=str(path)))
    assert outcome.state == "finished", outcome.traceback
    p = lesson.patches
    assert p["fake"].shape == p["real"].shape == lesson.patch.out_hw
    assert ((p["fake"] >= 0) & (p["fake"] <= 1)).all()
    assert "P(real)" in lesson.steps[-1].caption and len(lesson.steps[-1].scene.panels) == 2


def test_a_file_that_is_no_pix2pix_is_reported_and_the_geometry_stays(tmp_path):
    path = tmp_path / "pix2pix-broken.ckpt"
    path.write_bytes(b"not a checkpoint")
    lesson = PatchGANLesson()
    outcome = run_job_sync(Job("p", lesson.prepare, data=make_input(np.zeros((40, 50, 3), np.uint8)),
                               model_path=str(path)))
    assert outcome.state == "finished"
    assert any("not used" in n for n in lesson.notes) and lesson.patch.size == 70
