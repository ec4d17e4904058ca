"""The families that draw their own batches (pix2pix, siamese's P x K batches, fast style's
crops) split each epoch between the ranks of a torchrun run, and a stopped run of each resumes
batch for batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from engine.annotations.store import ProjectStore
from engine.demo.galaxies import build_galaxies
from engine.demo.glyphs import build_glyphs
from engine.jobs.cancel import CancelToken
from engine.models.registry import get_family
from engine.train.siamese import PKBatches
from tests.engine.train.test_distributed import collect_losses

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[3]
MAIN = REPO / "tests" / "engine" / "train" / "ddp_families_main.py"

PIX2PIX = {"size": 32, "width": 4, "depth": 3, "dropout": 1, "ndf": 4, "n_layers": 2, "batch_size": 2,
           "val_limit": 2, "preview_every": 0, "preview_images": 1, "epoch_size": 0, "max_seconds": None,
           "epochs": 2}
SIAMESE = {"input_size": 32, "p_identities": 2, "k_per_identity": 2, "val_limit": 12, "preview_every": 0,
           "max_seconds": None, "epochs": 2, "augment": True}
FASTSTYLE = {"width": 4, "residual_blocks": 1, "crop": 32, "batch_size": 1, "epochs": 2, "steps_per_epoch": 3,
             "max_seconds": None, "preview_every": 0, "val_images": 1, "network": "lite0", "style": "gravel"}


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    photos = root / "photos" / "photos.vbproj"
    photos.parent.mkdir()
    with ProjectStore(photos, create=True) as store:
        for k, name in enumerate(("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")):
            path = photos.parent / f"{name}.png"
            rgb = cv2.resize(getattr(skimage.data, name)(), (64, 48))
            cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            store.add_image(path, split="val" if k == 4 else "train")
    return {"pix2pix": (build_galaxies(root / "gal", n_images=10, seed=1), PIX2PIX), "colorize": (photos, PIX2PIX),
            "siamese": (build_glyphs(root / "glyphs", n_identities=12, renderings=3, seed=5), SIAMESE),
            "faststyle": (photos, FASTSTYLE)}


def test_pk_batches_of_two_ranks_are_disjoint_shares_of_one_process_with_twice_p():
    labels = np.repeat(np.arange(9), 3)
    one = PKBatches(labels, p=4, k=2, seed=3)
    ranks = [PKBatches(labels, p=2, k=2, seed=3, rank=r, world=2) for r in (0, 1)]
    for s in (one, *ranks):
        s.set_epoch(4)
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 2
    for whole, a, b in zip(one, *ranks):
        assert not set(a[1].tolist()) & set(b[1].tolist())  # no identity on both ranks
        assert sorted(whole[0].tolist()) == sorted(a[0].tolist() + b[0].tolist())
    later = PKBatches(labels, p=2, k=2, seed=3, rank=1, world=2)
    later.set_epoch(4, skip=1)
    assert [b[0].tolist() for b in later] == [b[0].tolist() for b in ranks[1]][1:]
    ranks[1].set_epoch(5)
    assert [b[0].tolist() for b in later] != [b[0].tolist() for b in ranks[1]][1:]  # a new order each epoch


@pytest.mark.parametrize("family,stop_at", [("pix2pix", 5), ("colorize", 3), ("siamese", 7), ("faststyle", 4)])
def test_a_stopped_run_of_a_family_with_its_own_batches_resumes_batch_for_batch(projects, tmp_path, family, stop_at):
    project, tiny = projects[family]
    spec = get_family(family)
    config = {**spec.preset("cpu"), **tiny, "device": "cpu"}
    straight = collect_losses(spec.train(CancelToken(), str(project), str(tmp_path / "a.ckpt"), config))
    token = CancelToken()
    first = collect_losses(spec.train(token, str(project), str(tmp_path / "b.ckpt"), config), stop_at, token)
    assert len(first) == stop_at < len(straight)  # stopped within the second epoch
    rest = collect_losses(spec.train(CancelToken(), str(project), str(tmp_path / "b.ckpt"),
                                     {**config, "resume": str(tmp_path / "b.ckpt")}))
    assert len(first) + len(rest) == len(straight)
    assert max(abs(a - b) for a, b in zip(straight, first + rest)) < 1e-5


def test_under_torchrun_the_ranks_of_each_family_see_disjoint_items(projects, tmp_path):
    runs = [{"family": f, "project": str(p), "config": c} for f, (p, c) in projects.items() if f != "colorize"]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(MAIN), str(tmp_path), json.dumps(runs)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    for family in ("pix2pix", "siamese", "faststyle"):
        r0, r1 = (json.loads((tmp_path / f"{family}-rank{r}.json").read_text()) for r in (0, 1))
        assert r0["steps"] == r1["steps"] > 0
        assert set(r0["items"]) == set(r1["items"]) == {"1", "2"}, family
        for epoch in ("1", "2"):
            mine, theirs = r0["items"][epoch], r1["items"][epoch]
            assert len(mine) == len(theirs) > 0
            assert not set(mine) & set(theirs), (family, epoch, mine, theirs)
        assert r0["items"]["1"] != r0["items"]["2"] or family == "faststyle"
        assert r0["history"][-1]["processes"] == 2
        per_process = {"pix2pix": 2, "siamese": 4, "faststyle": 1}[family]
        assert r0["history"][-1]["batch_size_per_process"] == per_process
