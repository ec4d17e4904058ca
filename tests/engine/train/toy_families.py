"""Throwaway model families, one of each kind, registered from a test module: the proof that a
family plugs into the platform (CLI, Train panel, live views) with no edit anywhere else.

Each is a tiny 1x1-convolution autoencoder on 16x16 thumbnails of the project's training images,
differing in what the platform must support for its kind: an image as the parameter
(optimisation), two optimisers (image2image), previews of every kind.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from engine.annotations.model import Annotation, Box
from engine.data.datasets import open_project
from engine.jobs.events import Log
from engine.models.checkpoint import load_checkpoint
from engine.models.registry import KINDS, FamilySpec
from engine.train.loop import Trainer, check_finite
from engine.viz import previews as pv

SIZE = 16


def category_names(store_path: str) -> list[str]:
    store = open_project(store_path)
    try:
        return [c.name for c in store.categories()]
    finally:
        store.close()


def thumbnails(store_path: str, split: str = "train", limit: int = 4) -> torch.Tensor:
    from engine.annotations.imageio import read_image_rgb

    store = open_project(store_path)
    try:
        recs = store.images(split=split)[:limit] or store.images()[:limit]
        pics = [cv2.resize(read_image_rgb(store.image_path(r)), (SIZE, SIZE)) for r in recs]
    finally:
        store.close()
    return torch.from_numpy(np.stack(pics)).permute(0, 3, 1, 2).float() / 255.0


def build(config: dict, num_classes: int) -> nn.Module:
    return nn.Conv2d(3, 3, 1)


def kind_previews(kind: str, image: np.ndarray, output: np.ndarray, step: int | None):
    """One preview of the family's kind (two for some), from an input and an output picture."""
    gray = output.mean(axis=2)
    if kind == "segmentation":
        yield pv.heatmap("toy heat", np.stack([gray, 1 - gray]), ["a", "b"], (0.0, 1.0), step)
        yield pv.class_map("toy classes", image, (gray > 0.5).astype(np.uint8), np.array([[0, 0, 0], [255, 0, 0]]),
                           ["background", "a"], step)
    elif kind in ("detection", "instance"):
        yield pv.image("toy detections", pv.draw_detections(image, np.array([[2, 2, 12, 12]]), [1], [0.9], ["a"],
                                                            ["#ff0000"]), step)
    elif kind == "embedding":
        yield pv.scatter("toy embedding", output.reshape(-1, 3)[:, :2], np.arange(SIZE * SIZE) % 2, ["x", "y"], step)
    elif kind == "image2image":
        yield pv.image_row("toy pair", [image, output, image], ["input", "output", "target"], step)
    else:
        flat = output.reshape(-1, 3)
        yield pv.matrix_grid("toy gram", [flat.T @ flat, np.eye(3)], ["layer 1", "layer 2"], step)
        yield pv.curves("toy losses", [0, 1, 2], {"content": [3, 2, 1], "style": [2, 2, 1]}, step)


class ToyTrainer(Trainer):
    metric = "score"

    def setup(self):
        self.x = thumbnails(self.store_path).to(self.device)
        self.model = build(self.cfg, 1).to(self.device)
        self.optimizers = [torch.optim.Adam(self.model.parameters(), lr=float(self.cfg.get("lr", 0.01)))]
        yield Log(f"{self.family}: {len(self.x)} thumbnails")

    def batches(self):
        return [self.x[i:i + 2] for i in range(0, len(self.x), 2)]

    def loss(self, batch):
        return {"loss": ((self.model(batch) - batch) ** 2).mean()}

    def output(self) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = self.model(self.x[:1]).clamp(0, 1)
        as_img = lambda t: (t[0].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)  # noqa: E731
        return as_img(self.x[:1]), as_img(out)

    def validate(self):
        with torch.no_grad():
            mse = float(((self.model(self.x) - self.x) ** 2).mean())
        return {"score": 1.0 / (1.0 + mse)}

    def previews(self, step):
        image, out = self.output()
        return kind_previews(self.kind, image, out, step)

    def meta(self):
        return {"classes": category_names(self.store_path)}


class TwoOptimiserTrainer(ToyTrainer):
    """image2image: a generator and a critic, each with its own optimiser (as a GAN has)."""

    def setup(self):
        yield from super().setup()
        self.critic = nn.Conv2d(3, 1, 1).to(self.device)
        self.optimizers.append(torch.optim.Adam(self.critic.parameters(), lr=0.01))

    def step(self, batch, where):
        gen_opt, critic_opt = self.optimizers
        fake = self.model(batch)
        critic_loss = ((self.critic(fake.detach()) - 0) ** 2).mean() + ((self.critic(batch) - 1) ** 2).mean()
        check_finite({"loss": critic_loss}, where)
        critic_opt.zero_grad()
        critic_loss.backward()
        critic_opt.step()
        gen_loss = ((fake - batch) ** 2).mean() + 0.01 * ((self.critic(fake) - 1) ** 2).mean()
        check_finite({"loss": gen_loss}, where)
        gen_opt.zero_grad()
        gen_loss.backward()
        gen_opt.step()
        return {"loss": float(gen_loss.detach()), "loss_critic": float(critic_loss.detach())}


class ImageParameterTrainer(ToyTrainer):
    """optimisation: the picture itself is what the optimiser changes (as in Gatys' method)."""

    def setup(self):
        self.x = thumbnails(self.store_path)[:1].to(self.device)
        self.model = nn.Module()
        self.model.picture = nn.Parameter(torch.rand_like(self.x))
        self.optimizers = [torch.optim.Adam([self.model.picture], lr=0.05)]
        yield from ()

    def batches(self):
        return [self.x]

    def loss(self, batch):
        return {"loss": ((self.model.picture - batch) ** 2).mean()}

    def output(self):
        as_img = lambda t: (t[0].detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)  # noqa: E731
        return as_img(self.x), as_img(self.model.picture)

    def validate(self):
        with torch.no_grad():
            return {"score": 1.0 / (1.0 + float(((self.model.picture - self.x) ** 2).mean()))}


class ToyPredictor:
    def __init__(self, path, device="auto") -> None:
        self.state, self.meta = load_checkpoint(path)
        self.kind = self.meta["kind"]
        self.class_names = list(self.meta["classes"])

    def annotate(self, rgb, image_id, category_ids, source, attributes=None, **_):
        if self.kind not in ("segmentation", "detection", "instance") or category_ids[0] is None:
            return []
        h, w = rgb.shape[:2]
        return [Annotation(image_id, category_ids[0], Box(w / 4, h / 4, 3 * w / 4, 3 * h / 4), source=source,
                           score=0.75, attributes=dict(attributes or {}))]

    def previews(self, rgb):
        small = cv2.resize(np.asarray(rgb, np.uint8), (SIZE, SIZE))
        return list(kind_previews(self.kind, small, 255 - small, None))


def trainer_for(kind: str) -> type[Trainer]:
    base = {"image2image": TwoOptimiserTrainer, "optimisation": ImageParameterTrainer}.get(kind, ToyTrainer)
    return type(f"Toy{kind.title()}Trainer", (base,), {"family": f"toy_{kind}", "kind": kind})


def toy_specs() -> list[FamilySpec]:
    preset = {"epochs": 2, "lr": 0.01, "max_seconds": 60.0, "classes": None, "hidden_size": 4, "mode": "fast"}
    from engine.models.registry import Option

    return [FamilySpec(f"toy_{kind}", kind, model=build, trainer=trainer_for(kind), predictor=ToyPredictor,
                       cpu_preset=preset, gpu_preset=preset, description=f"a throwaway {kind} family", metric="score",
                       options=(Option("lr", "learning rate"), Option("hidden_size", "width"),
                                Option("mode", "a choice", choices=("fast", "slow"))))
            for kind in KINDS]
