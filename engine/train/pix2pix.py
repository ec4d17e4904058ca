"""pix2pix on the one training loop: two optimisers, so the family overrides ``Trainer.step``.

Each step: G translates the batch; D takes one Adam step on half its real + fake loss (the fake
detached); then G takes one Adam step on GAN + λ·L1 against the D just updated (D's weights frozen
for that backward pass). Each loss is checked before its update, so a NaN never reaches weights.

Live views (fixed validation images, every ``preview_every`` steps and after validations):
"translations" (image_row: input | output | target columns, one row per image), "D on generated"
and "D on real" (heatmaps of D's per-patch probability of "real", over G's output and over the
target, for the first image). Loss terms g_gan, g_l1, d_loss come with every step; validation
gives l1 (mean absolute error, 0..1) and psnr (dB, the family's metric) on RGB pictures.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.annotations.errors import BadInput
from engine.data.pairs import (PairDataset, center_crop, decode_output, encode_pair, gray_rgb, identity_output,
                               input_picture, is_gray, load_pairs)
from engine.jobs.events import Log
from engine.models.pix2pix import (DEFAULT_CONFIG, GAN_LOSSES, PAIRS, Pix2Pix, discriminator_losses,
                                   generator_losses, receptive_field)
from engine.train.loop import Trainer, check_finite
from engine.viz import previews as pv


def picture_scores(output: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """{"l1" (mean |difference|, 0..1), "psnr" (dB, 8-bit peak)} of two uint8 RGB pictures."""
    d = output.astype(np.float64) - target.astype(np.float64)
    mse = float(np.mean(d * d))
    return {"l1": float(np.mean(np.abs(d))) / 255.0,
            "psnr": 10.0 * np.log10(255.0 ** 2 / mse) if mse > 0 else 100.0}


def check_config(cfg: dict, where: str = "config") -> None:
    if cfg["pairs"] not in PAIRS:
        raise BadInput(where, "pairs", f"{cfg['pairs']!r} is not one of {', '.join(PAIRS)}")
    if cfg["gan_loss"] not in GAN_LOSSES:
        raise BadInput(where, "gan_loss", f"{cfg['gan_loss']!r} is not one of {', '.join(GAN_LOSSES)}")
    step = 2 ** int(cfg["depth"])
    if int(cfg["size"]) % step:
        raise BadInput(where, "size", f"{cfg['size']} is not a multiple of 2**depth = {step}")


class Pix2PixTrainer(Trainer):
    family = "pix2pix"
    kind = "image2image"
    metric = "psnr"
    defaults = dict(DEFAULT_CONFIG)

    def setup(self):
        cfg = self.cfg
        check_config(cfg)
        pairs, size = cfg["pairs"], int(cfg["size"])
        folder = cfg.get("folder") or None
        warnings: list[str] = []
        yield Log(f"reading {pairs} pairs from {folder or self.store_path}")
        load = dict(cfg=cfg, folder=folder, should_stop=self.token.raise_if_cancelled, warn=warnings.append)
        short = int(cfg.get("load_size") or 0) or (round(size * 1.12) if cfg.get("jitter") else size)
        train = load_pairs(self.store_path, pairs, "train", short_side=short, **load)
        val_short = int(cfg.get("load_size") or 0) or size  # the scale of training, centre crops
        val = load_pairs(self.store_path, pairs, "val", short_side=val_short, **load) if train else []
        for text in warnings:
            yield Log(text, level="warning")
        if not val:
            yield Log("no validation pairs: validating on every tenth training pair", level="warning")
            val = train[9::10] or train[:1]
            train = [s for k, s in enumerate(train) if k % 10 != 9] or train
        self.pairs = pairs
        self.gray_targets = pairs != "colorize" and all(is_gray(s.photo) for s in train[:64])
        self.val = [center_crop(s, size) for s in val[: int(cfg["val_limit"])]]
        self.val_x = torch.stack([encode_pair(pairs, s.a, s.photo)[0] for s in self.val])
        dataset = PairDataset(train, pairs, cfg, size, int(cfg.get("epoch_size") or 0), int(cfg.get("seed") or 0))
        bs = int(cfg["batch_size"])  # per process: each rank of a distributed run draws its own share
        self.loader = self.make_loader(dataset, bs, drop_last=len(dataset) > bs * self.dist.world)
        self.model = Pix2Pix(cfg).to(self.device)
        G, D = self.model.G, self.model.D
        betas = (float(cfg["beta1"]), 0.999)
        self.optimizers = [torch.optim.Adam(G.parameters(), lr=float(cfg["lr"]), betas=betas),
                           torch.optim.Adam(D.parameters(), lr=float(cfg["lr"]), betas=betas)]
        self.receptive_field = receptive_field(D)
        self.preview_count = max(1, min(int(cfg["preview_images"]), len(self.val)))
        baseline = self._identity_scores()
        said = (f"; output = input scores l1 {baseline['l1']:.4f}, psnr {baseline['psnr']:.2f} dB" if baseline
                else "")
        yield Log(f"{len(train)} training and {len(self.val)} validation pairs ({pairs}, {size} px); "
                  f"PatchGAN receptive field {self.receptive_field} px; device {self.device}{said}")
        self.identity = baseline

    def _identity_scores(self) -> dict | None:
        scores = []
        for s in self.val:
            out = identity_output(self.pairs, s.a)
            if out is None:
                return None
            scores.append(picture_scores(out, s.photo))
        return {k: float(np.mean([d[k] for d in scores])) for k in ("l1", "psnr")} if scores else None

    def batches(self):
        return self.loader

    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def step(self, batch, where: str) -> dict[str, float]:
        x, y = batch
        cfg = self.cfg
        G, D = self.model.G, self.model.D
        opt_g, opt_d = self.optimizers
        kind = cfg["gan_loss"]
        G.train()
        D.train()
        fake = G(x)
        d = discriminator_losses(D, x, fake, y, kind)
        check_finite(d, f"{where} (discriminator)")
        opt_d.zero_grad(set_to_none=True)
        d["loss"].backward()
        opt_d.step()
        D.requires_grad_(False)  # G's backward pass needs D's input gradients, not its weights'
        try:
            g = generator_losses(D, x, fake, y, kind, float(cfg["lambda_l1"]), float(cfg["gan_weight"]))
            check_finite(g, f"{where} (generator)")
            opt_g.zero_grad(set_to_none=True)
            g["loss"].backward()
        finally:
            D.requires_grad_(True)
        opt_g.step()
        return {"loss": float(g["loss"].detach()), "g_gan": float(g["g_gan"].detach()),
                "g_l1": float(g["g_l1"].detach()), "d_loss": float(d["loss"].detach())}

    @torch.no_grad()
    def _translate(self, x: torch.Tensor, batch: int = 16) -> torch.Tensor:
        G = self.model.G
        was = G.training
        G.eval()
        try:
            return torch.cat([G(x[k:k + batch].to(self.device)).cpu() for k in range(0, len(x), batch)])
        finally:
            G.train(was)

    def validate(self) -> dict:
        out = self._translate(self.val_x)
        scores = [picture_scores(self._picture(x, y), s.photo) for x, y, s in zip(self.val_x, out, self.val)]
        return {"l1": float(np.mean([d["l1"] for d in scores])), "psnr": float(np.mean([d["psnr"] for d in scores]))}

    def _picture(self, x: torch.Tensor, y: torch.Tensor):
        picture = decode_output(self.pairs, x, y)
        return gray_rgb(picture) if self.gray_targets else picture

    @torch.no_grad()
    def previews(self, step: int):
        k = self.preview_count
        x = self.val_x[:k]
        out = self._translate(x)
        ins = [input_picture(self.pairs, xi) for xi in x]
        outs = [self._picture(xi, yi) for xi, yi in zip(x, out)]
        targets = [s.photo for s in self.val[:k]]
        yield pv.image_row("translations", [np.concatenate(col, axis=0) for col in (ins, outs, targets)],
                           ["input", "output", "target"], step, "input | output | target (validation images)")
        D = self.model.D
        was = D.training
        D.eval()
        try:
            x0 = x[:1].to(self.device)
            y_real = encode_pair(self.pairs, self.val[0].a, self.val[0].photo)[1][None].to(self.device)
            p_fake = torch.sigmoid(D(torch.cat([x0, out[:1].to(self.device)], 1)))[0].cpu().numpy()
            p_real = torch.sigmoid(D(torch.cat([x0, y_real], 1)))[0].cpu().numpy()
        finally:
            D.train(was)
        rf = self.receptive_field
        yield pv.heatmap("D on generated", p_fake, ["P(real)"], (0.0, 1.0), step,
                         f"D: P(real) per {rf}x{rf} patch of the generated image")
        yield pv.heatmap("D on real", p_real, ["P(real)"], (0.0, 1.0), step,
                         f"D: P(real) per {rf}x{rf} patch of the real image")

    def meta(self) -> dict:
        extra = {}
        if self.pairs == "labels2photo":
            from engine.annotations.store import ProjectStore
            from engine.data.pairs import palette_of

            with ProjectStore(self.store_path, readonly=True) as store:
                cats = store.categories()
                _, palette = palette_of(store)
            extra = {"classes": [c.name for c in cats], "palette": palette.tolist()}
        return {"classes": [], "pairs": self.pairs, "receptive_field": self.receptive_field,
                "gray_targets": self.gray_targets,
                "identity": self.identity, **extra}

    def result(self) -> dict:
        return {"pairs": self.pairs, "receptive_field": self.receptive_field, "identity": self.identity}

