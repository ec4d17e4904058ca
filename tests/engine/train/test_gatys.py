"""Style transfer as a job: both optimisers lower the loss, the run can be paused, stepped,
resumed and stopped (the picture so far is kept), and bad images are refused by name."""
import threading

import cv2
import numpy as np
import pytest

from engine.annotations.errors import BadInput
from engine.jobs.cancel import CancelToken
from engine.jobs.events import Metrics, Preview
from engine.jobs.runner import Job, JobRunner
from engine.train.gatys import stylize
from engine.train.run import drive

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"content": "astronaut", "style": "gravel", "network": "lite0", "size": 48, "steps": 6, "preview_every": 3}


def run(tmp_path, **config):
    events = []
    result = drive(stylize(CancelToken(), tmp_path / "out.png", {**TINY, **config}), events.append)
    return result, events


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_both_optimisers_lower_the_loss_on_a_tiny_case(tmp_path, optimizer):
    result, events = run(tmp_path, optimizer=optimizer, steps=8)
    losses = [h["loss"] for h in result["loss_history"]]
    assert len(losses) == 8
    assert losses[-1] < 0.8 * losses[0]
    assert "Lite0" in result["network"]
    picture = cv2.imread(result["picture"])
    assert picture.shape[:2] == (48, 48)


def test_by_default_every_style_layer_starts_at_an_equal_share_and_raw_weights_turn_that_off(tmp_path):
    result, _ = run(tmp_path, steps=2)
    layers = result["style_layers"]
    assert "rgb" in layers  # the pixels' Gram carries the style's palette
    first = result["loss_history"][0]
    for layer in layers:
        assert first[f"style/{layer}"] == pytest.approx(1.0 / len(layers), rel=1e-4)
    raw, _ = run(tmp_path, steps=2, balance=False, beta=1e7)
    shares = [raw["loss_history"][0][f"style/{layer}"] for layer in layers]
    assert max(shares) > 10 * min(shares)  # the raw layers differ by orders of magnitude


def test_the_live_views_are_the_picture_the_inputs_the_layer_losses_and_three_grams_per_layer(tmp_path):
    result, events = run(tmp_path)
    previews = {e.name: e for e in events if isinstance(e, Preview)}
    assert previews["picture"].kind == "image"
    assert previews["inputs"].kind == "image_row" and len(previews["inputs"].data["images"]) == 2
    per_layer = previews["style per layer"]
    assert per_layer.kind == "curves" and set(per_layer.data["series"]) == set(result["style_layers"])
    for layer in result["style_layers"]:
        grams = previews[f"gram {layer}"]
        style, now, diff = grams.data["matrices"]
        assert grams.data["titles"] == ["style", "picture", "|difference|"]
        np.testing.assert_allclose(diff, np.abs(now - style), rtol=1e-6)
        lo, hi = grams.data["levels"]  # one colour scale for all three, topped at the 99.5th percentile
        assert lo <= min(style.min(), now.min(), diff.min())
        assert hi == pytest.approx(np.percentile(np.concatenate([style.ravel(), now.ravel(), diff.ravel()]), 99.5),
                                   rel=1e-5)
    metrics = [e for e in events if isinstance(e, Metrics) and "loss" in e.values]
    assert {"content", "style", "tv", "loss"} <= set(metrics[-1].values)


def test_pause_step_resume_and_stop_keeps_the_current_picture(tmp_path):
    out = tmp_path / "stopped.png"
    seen: list[int] = []
    arrived = threading.Condition()

    def on_event(event):
        if isinstance(event, Metrics) and "loss" in event.values:
            with arrived:
                seen.append(event.step)
                arrived.notify_all()

    def wait_for(n):
        with arrived:
            assert arrived.wait_for(lambda: len(seen) >= n, timeout=60), f"only {len(seen)} steps arrived"

    job = Job("style", stylize, out=out, config={**TINY, "steps": 1000, "preview_every": 0})
    job.token.pause()  # paused before the first step
    runner = JobRunner(job, on_event).start()
    threading.Event().wait(1.0)
    assert seen == []
    job.token.step()
    wait_for(1)
    threading.Event().wait(0.5)
    assert seen == [1]  # exactly one step, then it waits again
    job.token.step(2)
    wait_for(3)
    threading.Event().wait(0.5)
    assert seen == [1, 2, 3]
    job.token.resume()
    wait_for(6)
    runner.cancel()
    outcome = runner.wait(60)
    assert outcome.state == "cancelled"
    assert 6 <= len(seen) < 1000
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[:2] == (48, 48)


def test_bad_images_are_refused_with_a_message_naming_the_file(tmp_path):
    tiny = tmp_path / "one_pixel.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(BadInput, match="one_pixel.png"):
        run(tmp_path, style=str(tiny))
    small = tmp_path / "eight.png"
    cv2.imwrite(str(small), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(BadInput, match="eight.png: style: 8x8 px is too small"):
        run(tmp_path, style=str(small))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(BadInput, match="junk.jpg: content"):
        run(tmp_path, content=str(junk))
    with pytest.raises(BadInput, match="optimizer"):
        run(tmp_path, optimizer="sgd")
    assert not (tmp_path / "out.png").exists()


def test_a_nan_stops_before_the_picture_is_touched(tmp_path):
    from engine.train.loop import NonFiniteLoss

    with pytest.raises(NonFiniteLoss, match="gatys"):
        run(tmp_path, beta=float("nan"))
