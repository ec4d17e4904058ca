"""The command line of style transfer: ``visionbench stylize`` (Gatys' method on two images) and
the fast-style branch of ``visionbench predict CKPT --project P --out DIR``.

Imported when the parser is built, so nothing heavy is imported at module level (``--help``
stays fast).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.annotations.errors import BadInput


def add_stylize_parser(sub) -> None:
    s = sub.add_parser(
        "stylize", help="style transfer (Gatys et al.): paint a content image in the style of another; "
                        "prints the loss history as JSON",
        description="Optimise a picture so its features match the content image and its Gram matrices match "
                    "the style image. The feature network is VGG-19 when its ImageNet weights are on this "
                    "machine (torch's hub cache or --vgg19-weights), else the shipped EfficientNet-Lite0; "
                    "nothing is downloaded. The network used is printed on stderr and in the JSON.")
    s.add_argument("--content", required=True, metavar="IMAGE",
                   help="content image: a file, or a scikit-image photo (astronaut, chelsea, coffee, rocket)")
    s.add_argument("--style", required=True, metavar="IMAGE",
                   help="style image: a file, or a scikit-image texture (brick, grass, gravel) or photo")
    s.add_argument("--out", required=True, metavar="OUT.png", help="the picture to write (also when interrupted)")
    s.add_argument("--steps", type=int, default=None, help="optimisation steps (default 200)")
    s.add_argument("--network", choices=("auto", "vgg19", "lite0"), default="auto",
                   help="feature network; auto: VGG-19 when its weights are present, else Lite0")
    s.add_argument("--vgg19-weights", default=None, metavar="FILE", help="a VGG-19 ImageNet state dict file")
    s.add_argument("--optimizer", choices=("lbfgs", "adam"), default=None, help="L-BFGS (default) or Adam")
    s.add_argument("--init", choices=("content", "noise", "style"), default=None, help="start picture")
    s.add_argument("--size", default=None, help="long side in pixels, or small|medium|large|full (128..512)")
    s.add_argument("--alpha", type=float, default=None, help="content weight")
    s.add_argument("--beta", type=float, default=None, help="style weight")
    s.add_argument("--raw-weights", action="store_true",
                   help="use α, β and the layer weights on the raw losses (the paper's); by default each style "
                        "layer's loss is divided by its value at the start and the content loss by the content "
                        "features' energy, so β is scale-free")
    s.add_argument("--tv-weight", type=float, default=None, help="total-variation weight")
    s.add_argument("--content-layer", default=None, help="content layer name")
    s.add_argument("--style-layers", default=None, help="style layer names, comma-separated")
    s.add_argument("--style-weights", default=None, help="one weight per style layer, comma-separated")
    s.add_argument("--previews", default=None, metavar="DIR", help="write each live view as DIR/<name>.png")
    s.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    s.add_argument("--seed", type=int, default=0)


def stylize_command(args: argparse.Namespace, progress=None) -> dict:
    """Run the style transfer the arguments ask for; return {"network", "picture", "steps",
    "seconds", "loss_history", ...}."""
    from engine.device import pick_device
    from engine.jobs.cancel import CancelToken
    from engine.train.gatys import stylize
    from engine.train.run import drive, event_sink, preview_writer

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        raise BadInput(str(out), "--out", "must be an image file name (.png, .jpg, .tif, .bmp)")
    if args.steps is not None and args.steps < 1:
        raise BadInput(str(args.steps), "--steps", "must be at least 1")
    cfg = {"content": args.content, "style": args.style, "network": args.network, "seed": args.seed}
    if getattr(args, "raw_weights", False):
        cfg["balance"] = False
    for key, value in (("steps", args.steps), ("vgg19_weights", args.vgg19_weights), ("optimizer", args.optimizer),
                       ("init", args.init), ("size", args.size), ("alpha", args.alpha), ("beta", args.beta),
                       ("tv_weight", args.tv_weight), ("content_layer", args.content_layer),
                       ("style_layers", args.style_layers), ("style_weights", args.style_weights)):
        if value is not None:
            cfg[key] = value
    try:
        cfg["device"] = str(pick_device(args.device))
    except ValueError as exc:
        raise BadInput(str(args.device), "--device", str(exc)) from None
    on_event, close = event_sink(progress, "stylize")
    if args.previews:
        on_event = preview_writer(args.previews, on_event)
    try:
        result = drive(stylize(CancelToken(), out, cfg), on_event)
    finally:
        close()
    keep = ("picture", "network", "steps", "seconds", "stopped", "device", "content_layer", "style_layers",
            "loss_history")
    return {k: result.get(k) for k in keep}


def is_faststyle(ckpt: str | Path) -> bool:
    """Whether ``ckpt`` is a fast-style checkpoint (False for anything unreadable)."""
    try:
        from engine.models.checkpoint import load_checkpoint

        return load_checkpoint(Path(ckpt))[1].get("family") == "faststyle"
    except Exception:  # noqa: BLE001 - the caller's own checks report what else it is
        return False


def predict_faststyle(ckpt: Path, project: Path, out: Path, split: str | None, device: str) -> dict:
    from engine.infer.faststyle_predictor import stylise_project

    return stylise_project(ckpt, project, out, split=split, device=device)
