"""Run a trained fast-style network: one forward pass stylises an image of any size."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.annotations.errors import BadInput
from engine.device import pick_device
from engine.jobs.events import Preview
from engine.models.checkpoint import CheckpointError, load_checkpoint
from engine.models.style import TRANSFORMER_VERSION, build_transformer
from engine.viz import previews as pv


class FastStylePredictor:
    """``stylise(rgb uint8 [H, W, 3]) -> uint8 [H, W, 3]``; also a PreviewSource (input | output)."""

    def __init__(self, checkpoint: str | Path, device: str = "auto") -> None:
        path = Path(checkpoint)
        try:
            state, meta = load_checkpoint(path)
        except CheckpointError as exc:
            raise BadInput(str(path), "checkpoint", exc.message) from None
        if meta.get("family") != "faststyle":
            raise BadInput(str(path), "family", f"is a {meta.get('family')!r} checkpoint, not a fast-style network")
        version = meta.get("transformer_version", 1)
        if version != TRANSFORMER_VERSION:
            raise BadInput(str(path), "transformer_version",
                           f"this fast-style network was trained by an older version of visionbench (network "
                           f"version {version}, this one runs version {TRANSFORMER_VERSION}, whose output is "
                           f"computed differently); train it again with `visionbench train faststyle`")
        self.meta = meta
        self.style = str(meta.get("style", ""))
        self.device = pick_device(device)
        self.model = build_transformer(meta.get("config", {})).to(self.device).eval()
        try:
            self.model.load_state_dict(state)
        except RuntimeError as exc:
            raise BadInput(str(path), "state_dict", f"does not fit the fast-style network ({exc})") from None
        self.name = f"faststyle:{path.stem}"

    @torch.inference_mode()
    def stylise(self, rgb: np.ndarray) -> np.ndarray:
        # the network's forward and two conversions (uint8 -> [0, 1] in, [0, 1] -> uint8 out), done
        # in place where they can be: nothing else runs per image
        x = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).to(self.device).permute(2, 0, 1)[None]
        y = self.model(x.float().mul_(1.0 / 255.0))[0].permute(1, 2, 0).contiguous()
        return y.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()

    def previews(self, rgb: np.ndarray) -> list[Preview]:
        return [pv.image_row("stylised", [rgb, self.stylise(rgb)], ["input", f"stylised ({self.style})"])]


def load(checkpoint: str | Path, device: str = "auto") -> FastStylePredictor:
    return FastStylePredictor(checkpoint, device)


def no_predictor(checkpoint: str | Path, device: str = "auto"):
    """Gatys' method optimises one picture; there is no model to run on other images."""
    raise BadInput(str(checkpoint), "family", "a style transfer run makes a picture, not a model to predict "
                   "with; train faststyle for a network that stylises any image")


def stylise_project(ckpt: str | Path, project: str | Path, out: str | Path, split: str | None = None,
                    device: str = "auto", progress=None) -> dict:
    """Stylise every image of a project (or one split) into ``out``/<image stem>.png; the project
    is only read. Returns {"checkpoint", "family", "style", "out", "images": n, "files": [...]}."""
    from engine.annotations.store import ProjectStore
    from engine.infer.run import inference_threads, read_model_image
    from engine.train.gatys import save_picture

    predictor = FastStylePredictor(ckpt, device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BadInput(str(out), "--out", "is a file; give a folder for the stylised images")
    files = []
    with ProjectStore(project, readonly=True) as store:
        paths = [store.image_path(r) for r in store.images(split=split)]
    with inference_threads(predictor):
        for k, path in enumerate(paths):
            target = out / f"{Path(path).stem}.png"
            if target.name in {Path(f).name for f in files}:
                target = out / f"{Path(path).stem}_{k}.png"
            save_picture(target, predictor.stylise(read_model_image(path)))
            files.append(str(target))
            if callable(progress):
                progress(k + 1, len(paths))
    return {"checkpoint": str(ckpt), "family": "faststyle", "style": predictor.style, "out": str(out),
            "images": len(files), "files": files}


def stylise_image_job(token, checkpoint: str, image: str, out: str, device: str = "auto"):
    """A job: stylise one image file with a fast-style checkpoint into ``out`` (PNG).
    Yields Progress and the ``stylised`` preview; returns {"picture": out, "style", "seconds"}."""
    import time

    from engine.infer.run import inference_threads, read_model_image
    from engine.jobs.events import Progress
    from engine.train.gatys import save_picture

    yield Progress(0, 2, "loading the fast-style network")
    predictor = FastStylePredictor(checkpoint, device)
    rgb = read_model_image(image)
    yield Progress(1, 2, "stylising")
    t0 = time.perf_counter()
    with inference_threads(predictor):
        styled = predictor.stylise(rgb)
    seconds = time.perf_counter() - t0
    save_picture(out, styled)
    yield pv.image_row("stylised", [rgb, styled], ["input", f"stylised ({predictor.style})"])
    yield Progress(2, 2, f"stylised in {seconds:.2f} s")
    return {"picture": str(out), "style": predictor.style, "seconds": round(seconds, 3)}
