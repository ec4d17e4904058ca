"""``visionbench info CKPT``: what a model file is, as JSON, without running it.

Family and kind, classes, the input size the model sees, a summary of its training (epochs,
steps, time, the metrics saved with it), where it was trained from (the project, when the
checkpoint records it, and the starting weights), and the libraries that wrote it. Works on
Visionbench checkpoints and on Ultralytics YOLO ``.onnx`` exports; anything else is BadInput
naming the file.
"""
from __future__ import annotations

from pathlib import Path

from engine.annotations.errors import BadInput

__all__ = ["checkpoint_info"]


def _input_size(family: str, config: dict) -> dict:
    if family == "yolo":
        n = int(config["input_size"])
        return {"width": n, "height": n, "resize": "stretched to the square input (no letterbox)"}
    if family in ("fasterrcnn", "maskrcnn"):
        return {"min_size": int(config["min_size"]), "max_size": int(config["max_size"]),
                "resize": "shorter side to min_size, longer side at most max_size, aspect kept"}
    if family == "unet":
        from engine.infer.unet_predictor import DEFAULT_TILE

        return {"tile": DEFAULT_TILE, "train_crop": config.get("crop"),
                "resize": "none: any size, predicted in overlapping tiles at full resolution"}
    return {}


def _training(meta: dict) -> dict:
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    summary = {
        "epoch": meta.get("epoch", metrics.get("epoch")),  # the epoch whose weights these are
        "steps": meta.get("step", metrics.get("steps")),
        "seconds": metrics.get("train_seconds", meta.get("seconds")),
        "metric": meta.get("metric"),  # the family's own measure of "best"
        "metrics": {k: v for k, v in scalars.items() if k not in ("epoch", "step", "steps", "train_seconds")},
    }
    history = meta.get("history")
    if isinstance(history, list) and history:
        summary["history"] = {"epochs": len(history), "first": history[0], "last": history[-1]}
    return summary


def _trained_from(meta: dict, saved: dict, config: dict) -> dict:
    """``saved``: the config the checkpoint holds; ``config``: that over the family's preset."""
    return {
        # older checkpoints do not record their project: null then
        "project": meta.get("project"),
        "category_ids": meta.get("category_ids"),
        "backbone": config.get("backbone") or config.get("encoder"),
        "pretrained_backbone": bool(config.get("pretrained")),  # False: it started from random weights
        "config": saved,
    }


def _onnx_info(path: Path) -> dict:
    from engine.infer.onnx_yolo import DetectorLoadError, OnnxYoloDetector

    try:
        det = OnnxYoloDetector(path, device="cpu")
    except DetectorLoadError as exc:
        message = str(exc)
        raise BadInput(str(path), "onnx model", message[len(f"{path}: "):] if message.startswith(f"{path}: ")
                       else message) from None
    h, w = det.input_size
    meta = det.session.get_modelmeta()
    return {"file": str(path), "bytes": path.stat().st_size, "family": "onnx", "kind": "detection",
            "classes": list(det.class_names), "input_size": {"width": w, "height": h, "resize": "letterbox"},
            "output_layout": det.layout, "training": None,
            "trained_from": {"producer": meta.producer_name or None,
                             "metadata": dict(meta.custom_metadata_map or {})}}


def checkpoint_info(path) -> dict:
    """A JSON-ready description of the model file ``path`` (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(str(path), "CKPT", "checkpoint file not found")
    if path.suffix.lower() == ".onnx":
        return _onnx_info(path)
    from engine.models.checkpoint import CheckpointError, load_checkpoint
    from engine.models.registry import get_family

    try:
        state, meta = load_checkpoint(path)
    except CheckpointError as exc:
        raise BadInput(str(path), "checkpoint", exc.message) from None
    family = str(meta["family"])
    try:
        spec = get_family(family)
    except ValueError as exc:
        raise BadInput(str(path), "family", str(exc)) from None
    # the family's CPU preset fills keys an older checkpoint did not save, as its predictor does
    config = {**spec.cpu_preset, **dict(meta.get("config") or {})}
    return {
        "file": str(path), "bytes": path.stat().st_size, "family": family, "kind": spec.kind,
        "description": spec.description, "classes": list(meta["classes"]),
        "input_size": _input_size(family, config),
        "stored_values": int(sum(t.numel() for t in state.values())),  # weights and buffers
        "training": _training(meta), "trained_from": _trained_from(meta, dict(meta.get("config") or {}), config),
        "versions": meta.get("versions"), "format_version": meta.get("format_version"),
    }
