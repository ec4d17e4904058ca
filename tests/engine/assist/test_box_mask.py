"""Box -> mask in the engine: GrabCut finds the object in the box; a model's best fitting mask is
taken and clipped to the box; the job never writes the project."""
import numpy as np
from PIL import Image

from engine.annotations import Annotation, Box
from engine.annotations.geometry import encode_mask
from engine.assist.box_mask import best_fitting_mask, box_mask_job
from engine.jobs import Job, run_job_sync
from tests.engine.infer.tiny_models import rcnn_checkpoint, unet_checkpoint


def scene(tmp_path, size=(96, 80)):
    w, h = size
    px = np.full((h, w, 3), 90, np.uint8)
    px[20:50, 30:70] = (230, 40, 40)
    path = tmp_path / "scene.png"
    Image.fromarray(px).save(path)
    return path


def run(path, checkpoint=None, box=(24, 14, 76, 56), category=None):
    outcome = run_job_sync(Job("box to mask", box_mask_job, image_path=str(path), box_xyxy=box, height=80, width=96,
                               checkpoint=None if checkpoint is None else str(checkpoint), category_name=category,
                               device="cpu"))
    assert outcome.state == "finished", outcome.traceback
    return outcome.result


def test_grabcut_segments_the_red_patch_inside_the_box(tmp_path):
    result = run(scene(tmp_path))
    m = result["mask"]
    assert result["method"] == "grabcut" and m.shape == (80, 96)
    truth = np.zeros_like(m)
    truth[20:50, 30:70] = 1
    assert (m & truth).sum() / (m | truth).sum() > 0.9


def test_the_best_fitting_prediction_wins_and_is_clipped_to_the_box():
    def mask_ann(cat, x1, y1, x2, y2, score):
        m = np.zeros((40, 40), np.uint8)
        m[y1:y2, x1:x2] = 1
        return Annotation(0, cat, encode_mask(m), score=score)

    far = mask_ann(1, 0, 0, 40, 40, 0.99)      # the whole image: a poor fit
    fit = mask_ann(2, 9, 9, 22, 22, 0.4)       # about the box, sticking out a little
    other = mask_ann(1, 10, 10, 20, 20, 0.3)   # a good fit of the box's own category
    got = best_fitting_mask([far, fit], (10, 10, 20, 20), 40, 40)
    assert got.sum() == 100 and got[10:20, 10:20].all()  # clipped to the box
    assert best_fitting_mask([far, fit, other], (10, 10, 20, 20), 40, 40, category_id=1).sum() == 100
    assert best_fitting_mask([Annotation(0, 1, Box(0, 0, 5, 5))], (10, 10, 20, 20), 40, 40) is None


def test_model_checkpoints_give_a_mask_inside_the_box(tmp_path):
    path = scene(tmp_path)
    for ckpt in (rcnn_checkpoint(tmp_path / "m.ckpt"), unet_checkpoint(tmp_path / "u.ckpt")):
        result = run(path, ckpt, category="circle")
        assert result["method"] == f"{'maskrcnn' if ckpt.stem == 'm' else 'unet'}:{ckpt.stem}", result
        m = result["mask"]
        assert m is not None and m.any(), result["message"]
        outside = np.ones_like(m)
        outside[14:56, 24:76] = 0
        assert not (m & outside).any()
