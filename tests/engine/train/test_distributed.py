"""Training beyond one process: torchrun with two gloo processes on the CPU computes what one
process computes with the doubled batch; only rank 0 writes; a dying rank ends the run; and a
stopped run resumes batch for batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.annotations.errors import BadInput
from engine.jobs.cancel import CancelToken, JobCancelled
from engine.jobs.events import Metrics, Progress
from engine.models.checkpoint import load_checkpoint
from engine.train.loop import fit
from engine.train.sampling import EpochSampler
from tests.engine.train.ddp_family import TinyTrainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[3]
MAIN = REPO / "tests" / "engine" / "train" / "ddp_main.py"


def run_main(out: Path, config: dict, nproc: int = 1, env: dict | None = None,
             restarts: int = 0) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                f"--max-restarts={restarts}"] if nproc > 1 else [sys.executable]
    return subprocess.run([*launcher, str(MAIN), str(out), json.dumps(config)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                                            **(env or {})})


def test_two_ranks_split_each_epoch_into_what_one_process_sees():
    one = EpochSampler(10, batch_size=4, seed=3)
    ranks = [EpochSampler(10, batch_size=2, seed=3, rank=r, world=2) for r in (0, 1)]
    for s in (one, *ranks):
        s.set_epoch(2)
    first_batch = sorted(list(one)[:4])
    assert sorted(list(ranks[0])[:2] + list(ranks[1])[:2]) == first_batch
    assert len(list(ranks[0])) == len(list(ranks[1])) == 5  # padded so no rank waits for the other
    later = EpochSampler(10, batch_size=2, seed=3, rank=1, world=2)
    later.set_epoch(2, skip=1)
    assert list(later) == list(ranks[1])[2:]


def test_torchrun_two_gloo_processes_train_like_one_with_the_doubled_batch(tmp_path):
    single = run_main(tmp_path / "one", {"batch_size": 8, "preview_every": 2})
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = run_main(tmp_path / "two", {"batch_size": 4, "preview_every": 2}, nproc=2)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one = json.loads((tmp_path / "one" / "rank0.json").read_text())
    r0 = json.loads((tmp_path / "two" / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "two" / "rank1.json").read_text())
    assert len(one["losses"]) == len(r0["losses"]) == len(r1["losses"]) == 18
    assert max(abs(a - b) for a, b in zip(one["losses"], r0["losses"])) < 1e-5
    assert r0["losses"] == r1["losses"]  # the logged loss is the mean over the ranks
    assert r0["previews"] > 0 and r1["previews"] == 0  # rank 0 alone shows and writes
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["ckpt.pt", "ckpt.pt.state", "rank0.json",
                                                                   "rank1.json"]
    w1, _ = load_checkpoint(tmp_path / "one" / "ckpt.pt")
    w2, meta = load_checkpoint(tmp_path / "two" / "ckpt.pt")
    for key in w1:
        assert torch.allclose(w1[key].float(), w2[key].float(), atol=1e-5), key
    assert meta["processes"] == 2 and meta["history"][-1]["batch_size_per_process"] == 4


def test_a_rank_that_dies_ends_the_run_with_exit_1_and_keeps_the_last_checkpoint(tmp_path):
    # 6 steps per epoch per rank: the first epoch's checkpoint is written before rank 1 dies at step 9
    done = run_main(tmp_path, {"batch_size": 4}, nproc=2, env={"TINY_DDP_KILL_RANK1_AT": "9"})
    assert done.returncode == 1
    assert "rank      : 1" in done.stderr and "exitcode  : 3" in done.stderr
    _, meta = load_checkpoint(tmp_path / "ckpt.pt")
    assert meta["epoch"] == 1


def test_torchrun_restarts_a_failed_run_from_its_last_state(tmp_path):
    done = run_main(tmp_path, {"batch_size": 4}, nproc=2, restarts=1,
                    env={"TINY_DDP_KILL_RANK1_AT": "9", "TINY_DDP_KILL_ONCE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    assert r0["steps"] == 18 and len(r0["losses"]) == 12  # resumed after epoch 1 (6 steps per rank)
    _, meta = load_checkpoint(tmp_path / "ckpt.pt")
    assert meta["step"] == 18


def collect_losses(gen, stop_at: int | None = None, token: CancelToken | None = None) -> list[float]:
    losses = []
    try:
        while True:
            event = next(gen)
            if isinstance(event, Metrics) and "loss" in event.values:
                losses.append(event.values["loss"])
            if stop_at is not None and isinstance(event, Progress) and event.step == stop_at:
                token.cancel()
    except (StopIteration, JobCancelled):
        pass
    return losses


def test_a_stopped_run_resumes_batch_for_batch(tmp_path):
    config = {"batch_size": 4, "epochs": 3}
    straight = collect_losses(fit(TinyTrainer, CancelToken(), str(tmp_path), str(tmp_path / "a.pt"), config))
    token = CancelToken()
    first = collect_losses(fit(TinyTrainer, token, str(tmp_path), str(tmp_path / "b.pt"), config), 17, token)
    assert len(first) == 17  # stopped mid-epoch (12 steps per epoch)
    rest = collect_losses(fit(TinyTrainer, CancelToken(), str(tmp_path), str(tmp_path / "b.pt"),
                              {**config, "resume": str(tmp_path / "b.pt")}))
    assert len(first) + len(rest) == len(straight) == 36
    assert max(abs(a - b) for a, b in zip(straight, first + rest)) < 1e-6


def test_resume_without_a_state_names_the_file(tmp_path):
    with pytest.raises(BadInput) as err:
        next(fit(TinyTrainer, CancelToken(), str(tmp_path), str(tmp_path / "c.pt"),
                 {"resume": str(tmp_path / "nothing.pt")}))
    assert "nothing.pt.state" in str(err.value)
