"""The loop's time budget, for any family: the run ends within the budget plus 5 %, and the
checkpoint is the model at the budget's end (validated there), not after an epoch past it."""
import time

import pytest
import torch

from engine.jobs import Job, Log, Metrics, run_job_sync
from engine.models.checkpoint import load_checkpoint
from engine.models.registry import FamilySpec
from tests.engine.train.toy_families import ToyTrainer, build


class SlowTrainer(ToyTrainer):
    """0.05 s a step, 0.4 s a validation, 200 steps an epoch: one epoch takes longer than the budget."""

    family = "toy_slow"
    kind = "detection"

    def batches(self):
        return [self.x[:2]] * 200

    def step(self, batch, where):
        time.sleep(0.05)
        return super().step(batch, where)

    def validate(self):
        time.sleep(0.4)
        # improves with every validation, so the last one is the best and is the one saved
        return {"score": float(len(self.seen)) if self.seen.append(1) is None else 0.0}

    def setup(self):
        self.seen = []
        yield from super().setup()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from engine.demo.shapes import build_shapes

    return build_shapes(tmp_path_factory.mktemp("budget"), n_images=6, seed=2)


@pytest.mark.parametrize("budget", [3.0, 6.0])
def test_training_ends_within_the_budget_plus_five_percent_with_the_last_model_saved(project, tmp_path, budget):
    spec = FamilySpec("toy_slow", "detection", model=build, trainer=SlowTrainer, predictor=lambda p, d: None)
    events = []
    t0 = time.perf_counter()
    outcome = run_job_sync(Job("t", spec.train, store_path=str(project), out=str(tmp_path / "b.ckpt"),
                               config={"epochs": 50, "max_seconds": budget}), events.append)
    wall = time.perf_counter() - t0
    assert outcome.state == "finished", outcome.error
    result = outcome.result
    assert result["stopped"] == "budget" and result["epochs"] == 1  # cut inside the first epoch
    assert result["seconds"] <= budget * 1.05 and wall <= budget * 1.05 + 0.5
    assert result["steps"] >= 10  # most of the budget went to training, not to the reserve
    _, meta = load_checkpoint(tmp_path / "b.ckpt")
    assert meta["step"] == result["steps"]  # the model at the budget's end
    val_steps = [e.step for e in events if isinstance(e, Metrics) and "val_score" in e.values]
    assert val_steps == [0, result["steps"]]  # the untrained baseline, then the budget's end
    assert any(isinstance(e, Log) and "time budget" in e.text for e in events)


def test_the_lr_warms_up_then_follows_the_clock_down_to_its_floor(project, tmp_path):
    spec = FamilySpec("toy_slow", "detection", model=build, trainer=SlowTrainer, predictor=lambda p, d: None)
    events = []
    outcome = run_job_sync(Job("t", spec.train, store_path=str(project), out=str(tmp_path / "lr.ckpt"),
                               config={"epochs": 50, "max_seconds": 4.0, "warmup_steps": 5, "lr": 0.01}),
                           events.append)
    assert outcome.state == "finished", outcome.error
    lrs = [e.values["lr"] for e in events if isinstance(e, Metrics) and "lr" in e.values]
    assert lrs[0] == pytest.approx(0.001)  # warm-up starts at 10 %
    peak = max(lrs)
    # the warm-up ends at step 5; by then the clock-driven cosine has come down a little
    assert 0.008 < peak <= 0.01 and lrs.index(peak) <= 6
    assert lrs[-1] < 0.25 * peak  # near the deadline the cosine is near its floor
    assert all(b <= a + 1e-12 for a, b in zip(lrs[6:], lrs[7:]))  # decays monotonically after warm-up


def test_a_nan_loss_stops_before_the_update_and_says_what_was_kept(project, tmp_path):
    class Exploding(SlowTrainer):
        def batches(self):
            return [self.x[:2]] * 5

        def loss(self, batch):
            out = super().loss(batch)
            return {"loss": out["loss"] * float("nan")} if len(self.seen) >= 2 else out

        def validate(self):
            self.seen.append(1)
            return {"score": 0.5}

    spec = FamilySpec("toy_nan", "detection", model=build, trainer=Exploding, predictor=lambda p, d: None)
    outcome = run_job_sync(Job("t", spec.train, store_path=str(project), out=str(tmp_path / "n.ckpt"),
                               config={"epochs": 3, "max_seconds": None}))
    assert outcome.state == "failed" and "NonFiniteLoss" in outcome.error
    assert "before the update" in outcome.error and "last good checkpoint (epoch 2)" in outcome.error
    assert "now 0.01" in outcome.error  # the rate the optimiser ran with
    state, meta = load_checkpoint(tmp_path / "n.ckpt")
    assert meta["epoch"] == 2 and all(bool(torch.isfinite(v).all()) for v in state.values())
