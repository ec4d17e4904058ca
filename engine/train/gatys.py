"""Gatys style transfer as a job on the common training loop: the picture is the parameter.

One loop step is one evaluation of the perceptual loss (engine.models.style.PerceptualLoss) and
one update of the picture, by L-BFGS (the paper's optimiser, the default) or Adam. The loop gives
pause / resume / single steps, the NaN policy and previews; ``Trainer.save`` writes the picture
(PNG) instead of a checkpoint, and ``Trainer.cancelled`` keeps the current picture when the run
is stopped (docs/adr/0025-style-transfer.md). By default (``balance``) the terms are made
scale-free at the start picture: each style layer's loss relative to its value there, the content
loss relative to the content features' energy (PerceptualLoss.balance).

Previews every ``preview_every`` steps: ``picture`` (image), ``inputs`` (content | style),
``style per layer`` (curves) and ``gram <layer>`` for every style layer: the style image's Gram
matrix, the picture's, and |difference|, on one colour scale (matrix_grid with ``levels``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from engine.annotations.errors import BadInput
from engine.jobs.cancel import CancelToken
from engine.jobs.events import Event, Log, Preview
from engine.models.style import DEFAULT_LAYERS, PerceptualLoss, feature_network
from engine.train.loop import Trainer, check_finite, fit
from engine.viz import previews as pv

# Photos and textures that ship inside scikit-image: usable as content or style without a file.
SAMPLE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field")
TEXTURES = ("brick", "grass", "gravel")
SIZE_PRESETS = {"small": 128, "medium": 256, "large": 384, "full": 512}
OPTIMISERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MIN_SIDE = 16  # pixels: a smaller image has no texture for the deeper layers to see

GATYS_DEFAULTS: dict[str, Any] = {
    "content": "astronaut", "style": "brick", "network": "auto", "vgg19_weights": "",
    "content_layer": "", "style_layers": "", "style_weights": "",
    "alpha": 1.0, "beta": 100.0, "tv_weight": 0.0, "balance": True, "optimizer": "lbfgs", "lr": 0.0,
    "init": "content",
    "size": 256, "steps": 200, "preview_every": 10,
    # the loop's schedule is for training; L-BFGS sets its own step and Adam runs at a fixed rate
    "epochs": 1, "warmup_steps": 1, "lr_floor": 1.0, "eval_every": 1,
}
_DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


def load_picture(spec: str, field: str) -> tuple[np.ndarray, str]:
    """(uint8 RGB [H, W, 3], name) of a scikit-image sample/texture name or an image file;
    BadInput naming the file and ``field`` when it is unreadable or smaller than 16 px."""
    spec = str(spec or "").strip()
    if not spec:
        raise BadInput("<none>", field, "no image given (a file, or one of "
                       f"{', '.join(TEXTURES + SAMPLE_IMAGES)})")
    if spec in TEXTURES or spec in SAMPLE_IMAGES:
        import skimage.data

        picture = np.asarray(getattr(skimage.data, spec)())
        name = spec
    else:
        from engine.infer.run import read_model_image

        path = Path(spec)
        try:
            picture = read_model_image(path)
        except BadInput as exc:
            raise BadInput(str(path), field, exc.problem.message) from None
        name = path.name
        if min(picture.shape[:2]) < MIN_SIDE:
            raise BadInput(str(path), field, f"{picture.shape[1]}x{picture.shape[0]} px is too small for style "
                           f"transfer (at least {MIN_SIDE} px a side)")
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=2)
    return np.ascontiguousarray(picture[..., :3]), name


def side_of(size: Any) -> int:
    """The long side in pixels of a size preset name or a number."""
    if isinstance(size, str) and size in SIZE_PRESETS:
        return SIZE_PRESETS[size]
    try:
        side = int(size)
    except (TypeError, ValueError):
        raise BadInput("config", "size", f"must be pixels or one of {', '.join(SIZE_PRESETS)}, got {size!r}") from None
    if not 32 <= side <= 2048:
        raise BadInput("config", "size", f"must be 32..2048 pixels, got {side}")
    return side


def to_tensor(picture: np.ndarray, long_side: int) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [1, 3, h, w] in [0, 1], the long side resized to ``long_side``."""
    import cv2

    h, w = picture.shape[:2]
    scale = long_side / max(h, w)
    size = (max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale)))
    resized = cv2.resize(picture, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return torch.from_numpy(resized).permute(2, 0, 1)[None].float().div(255.0).contiguous()


def to_uint8(picture: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [0, 1] -> uint8 [H, W, 3]."""
    return (picture.detach()[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)


def _names(text: Any) -> list[str]:
    if isinstance(text, (list, tuple)):
        return [str(t).strip() for t in text if str(t).strip()]
    return [t.strip() for t in str(text or "").split(",") if t.strip()]


def _weights(text: Any) -> list[float]:
    try:
        return [float(t) for t in _names(text)]
    except ValueError:
        raise BadInput("config", "style_weights", f"must be numbers separated by commas, got {text!r}") from None


def _flag(value: Any) -> bool:
    return str(value).strip().lower() not in ("", "0", "false", "no", "off", "none")


def build_objective(cfg: dict, net, device: torch.device) -> PerceptualLoss:
    """The perceptual loss the config asks for (the network's default layers where none are named)."""
    layers = DEFAULT_LAYERS[net.name]
    return PerceptualLoss(net, str(cfg.get("content_layer") or layers["content"]),
                          _names(cfg.get("style_layers")) or list(layers["style"]), _weights(cfg.get("style_weights")),
                          float(cfg["alpha"]), float(cfg["beta"]), float(cfg["tv_weight"])).to(device)


class GatysTrainer(Trainer):
    family = "gatys"
    kind = "optimisation"
    metric = "score"  # minus the total loss: higher is better, as the loop wants
    resumable = False  # its output is a picture; a stopped run keeps it (Trainer.cancelled)
    defaults = GATYS_DEFAULTS

    def setup(self) -> Iterator[Event]:
        cfg = self.cfg
        optimiser = str(cfg["optimizer"]).lower()
        if optimiser not in OPTIMISERS:
            raise BadInput("config", "optimizer", f"must be one of {', '.join(OPTIMISERS)}, got {optimiser!r}")
        init = str(cfg["init"]).lower()
        if init not in INITS:
            raise BadInput("config", "init", f"must be one of {', '.join(INITS)}, got {init!r}")
        side = side_of(cfg["size"])
        content_rgb, self.content_name = load_picture(cfg["content"], "content")
        style_rgb, self.style_name = load_picture(cfg["style"], "style")
        self.net = feature_network(str(cfg.get("network") or "auto"), cfg.get("vgg19_weights") or None)
        self.network = self.net.describe()
        yield Log(f"feature network: {self.network}")
        self.net.to(self.device)
        self.objective = build_objective(cfg, self.net, self.device)
        self.content = to_tensor(content_rgb, side).to(self.device)
        self.style = to_tensor(style_rgb, side).to(self.device)
        self.objective.set_style(self.style)
        self.objective.set_content(self.content)
        if init == "content":
            start = self.content.clone()
        elif init == "style":
            start = torch.nn.functional.interpolate(self.style, size=self.content.shape[-2:], mode="bilinear",
                                                    align_corners=False)
        else:
            g = torch.Generator().manual_seed(int(cfg.get("seed") or 0))
            start = torch.rand(self.content.shape, generator=g).to(self.device)
        self.picture = start.contiguous().requires_grad_(True)
        self.balanced = self.objective.balance(self.picture.detach()) if _flag(cfg.get("balance")) else {}
        self.optimiser_name = optimiser
        lr = float(cfg.get("lr") or _DEFAULT_LR[optimiser])
        if optimiser == "lbfgs":
            # One evaluation per loop step: max_iter 1 and no line search; L-BFGS keeps its
            # curvature history across calls, so 200 calls are 200 iterations of one run.
            self.lbfgs = torch.optim.LBFGS([self.picture], lr=lr, max_iter=1, history_size=50)
            self.optimizers = []
        else:
            self.lbfgs = None
            self.optimizers = [torch.optim.Adam([self.picture], lr=lr)]
        self.scale: float | None = None
        self.steps_done = 0
        self.loss_history: list[dict[str, float]] = []
        self.grams: dict[str, torch.Tensor] = {}
        self.inputs_sent = False
        yield Log(f"style transfer: {self.content_name} in the style of {self.style_name}, "
                  f"{self.content.shape[-1]}x{self.content.shape[-2]} px, {optimiser}, from {init}")

    def batches(self):
        return range(self.steps_per_epoch())

    def steps_per_epoch(self) -> int:
        return max(1, int(self.cfg["steps"]))

    def _evaluate(self, where: str) -> tuple[torch.Tensor, dict[str, float]]:
        terms, grams = self.objective(self.picture)
        values = {k: float(v.detach()) for k, v in terms.items()}
        check_finite(terms, where)  # before any update: a NaN never reaches the picture
        if self.scale is None:
            # L-BFGS skips curvature pairs with sᵀy < 1e-10 and sizes its first step by 1/|g|₁, so a
            # small loss (a low β) would never build a history: the optimiser sees the loss scaled
            # to 1e6 at the start, whatever α and β are. Adam is scale-free anyway.
            self.scale = 1e6 / max(values["loss"], 1e-12)
        self.grams = grams
        return terms["loss"] * self.scale, values

    def step(self, batch: Any, where: str) -> dict[str, float]:
        box: dict[str, dict[str, float]] = {}
        if self.lbfgs is not None:
            def closure() -> torch.Tensor:
                self.lbfgs.zero_grad(set_to_none=True)
                loss, values = self._evaluate(where)
                box.setdefault("values", values)
                loss.backward()
                return loss
            self.lbfgs.step(closure)
        else:
            opt = self.optimizers[0]
            opt.zero_grad(set_to_none=True)
            loss, box["values"] = self._evaluate(where)
            loss.backward()
            opt.step()
        with torch.no_grad():
            self.picture.clamp_(0.0, 1.0)
        self.steps_done += 1
        values = box["values"]
        self.loss_history.append({"step": self.steps_done - 1, **values})
        # the per-layer terms go to the "style per layer" preview, not to the loss curves
        return {k: v for k, v in values.items() if "/" not in k}

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        terms, self.grams = self.objective(self.picture)
        values = {k: float(v) for k, v in terms.items() if "/" not in k}
        return {"score": -values["loss"], **values}

    def previews(self, step: int) -> Iterator[Preview]:
        yield pv.image("picture", to_uint8(self.picture), step, f"picture, step {step}")
        if not self.inputs_sent:
            self.inputs_sent = True
            yield pv.image_row("inputs", [to_uint8(self.content), to_uint8(self.style)],
                               [f"content: {self.content_name}", f"style: {self.style_name}"], step)
        if self.loss_history:
            xs = [h["step"] for h in self.loss_history]
            series = {name: [h.get(f"style/{name}", math.nan) for h in self.loss_history]
                      for name in self.objective.style_layers}
            yield pv.curves("style per layer", xs, series, step, "style loss per layer (weighted)")
        for name in self.objective.style_layers:
            yield gram_preview(name, self.objective.style_targets[name], self.grams.get(name), step)

    def state_dict(self) -> dict:
        return {"picture": self.picture.detach()}

    def meta(self) -> dict:
        return {"classes": [], "network": self.network, "content": self.content_name, "style": self.style_name}

    def save(self, out: Path, meta: dict) -> None:
        if Path(out).suffix.lower() in IMAGE_SUFFIXES:
            save_picture(out, to_uint8(self.picture))
            return
        # run as a family from the Train panel: a checkpoint where one is expected, the picture beside it
        super().save(out, {**meta, "picture": str(Path(out).with_suffix(".png"))})
        save_picture(Path(out).with_suffix(".png"), to_uint8(self.picture))

    def cancelled(self, out: Path) -> None:
        if getattr(self, "picture", None) is not None and self.steps_done:
            save_picture(out if Path(out).suffix.lower() in IMAGE_SUFFIXES else Path(out).with_suffix(".png"),
                         to_uint8(self.picture))

    def result(self) -> dict:
        return {"picture": None, "network": getattr(self, "network", ""), "loss_history": self.loss_history,
                "content_layer": self.objective.content_layer, "style_layers": list(self.objective.style_layers)}


def gram_preview(layer: str, style_gram: torch.Tensor, current: torch.Tensor | None, step: int | None) -> Preview:
    """matrix_grid of one layer: style | picture | |difference|, on the colour scale of all three."""
    target = style_gram.detach().float().cpu().numpy()
    now = current[0].detach().float().cpu().numpy() if current is not None else np.zeros_like(target)
    diff = np.abs(now - target)
    lo = float(min(target.min(), now.min(), 0.0))
    # A few channels' large diagonal entries would leave every other entry dark: the one scale of
    # all three tops at the 99.5th percentile of their values (what is above is drawn at the top).
    hi = float(np.percentile(np.concatenate([target.ravel(), now.ravel(), diff.ravel()]), 99.5))
    hi = max(hi, lo + 1e-12)
    return pv.matrix_grid(f"gram {layer}", [target, now, diff], ["style", "picture", "|difference|"], step,
                          f"Gram matrices of {layer} ({target.shape[0]} channels)", levels=(lo, hi))


def save_picture(out: str | Path, picture: np.ndarray) -> Path:
    """Write uint8 RGB [H, W, 3] as an image file, atomically (temp file, then replace)."""
    import cv2

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower() if out.suffix.lower() in IMAGE_SUFFIXES else ".png"
    tmp = out.with_name(f".{out.stem}.tmp{suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        raise BadInput(str(out), "out", "cannot write the picture there (is the extension an image type?)")
    tmp.replace(out)
    return out


def stylize(token: CancelToken, out: str | Path, config: dict | None = None) -> Iterator[Event]:
    """The style transfer job: ``config`` holds content, style and any GATYS_DEFAULTS key; the
    picture is written to ``out`` at the end (or when stopped). Returns the loop's result with
    ``picture`` (the file), ``network`` and ``loss_history`` (one dict of loss terms per step)."""
    result = yield from fit(GatysTrainer, token, "", str(out), config)
    result["picture"] = str(out)
    result.pop("checkpoint", None)
    return result
