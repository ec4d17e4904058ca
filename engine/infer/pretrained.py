"""Pretrained COCO detectors: the catalogue, where their weights live, and the one download.

Visionbench never downloads on its own. ``download_job`` runs only when the user clicks Get in
Models > Pretrained models; everything else here reads local files. The catalogue comes from
torchvision's weights enums (URL, parameter count, file size, COCO-val2017 box/mask mAP, notes),
so it follows the installed torchvision instead of a copied table.

Checking follows torch.hub: the file name of a weights URL ends in ``-<hex digits>.pth`` and those
digits are the beginning of the file's SHA-256 (``torch.hub.HASH_REGEX``). A download goes to
``<dest>/<name>.partial`` and is renamed only once the hash matches; a cancelled, failed or
mismatching download leaves nothing behind.

Weights are looked for in the user's model folder (a setting of the workbench, or the environment
variable ``VISIONBENCH_MODEL_DIR`` for the command line) and then in torch's hub cache
(``$TORCH_HOME/hub/checkpoints``), the place torchvision itself would use.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from engine.infer.detector_api import TORCHVISION_COCO_ARCHS, DetectorLoadError
from engine.jobs import Progress

__all__ = ["DownloadError", "PretrainedModel", "add_file_job", "add_weights_file", "catalogue", "check_hash",
           "check_state_dict", "download_job", "find_weights", "hub_checkpoint_dir", "model_by_arch", "offline_hint",
           "user_model_dirs", "weight_dirs", "weights_for_name"]

MODEL_DIR_ENV = "VISIONBENCH_MODEL_DIR"
# torch.hub's rule, repeated here so that listing what is present never imports torch (the GUI
# thread asks); tests check it equals torch.hub.HASH_REGEX.
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
CHUNK = 256 * 1024  # bytes per read: a progress event and a cancel point every few ms on a LAN
TIMEOUT_S = 30.0

TITLES = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": "Faster R-CNN MobileNetV3-Large 320 FPN",
    "fasterrcnn_mobilenet_v3_large_fpn": "Faster R-CNN MobileNetV3-Large FPN",
    "fasterrcnn_resnet50_fpn": "Faster R-CNN ResNet-50 FPN",
    "fasterrcnn_resnet50_fpn_v2": "Faster R-CNN ResNet-50 FPN v2",
    "maskrcnn_resnet50_fpn": "Mask R-CNN ResNet-50 FPN",
    "maskrcnn_resnet50_fpn_v2": "Mask R-CNN ResNet-50 FPN v2",
    "retinanet_resnet50_fpn": "RetinaNet ResNet-50 FPN",
    "retinanet_resnet50_fpn_v2": "RetinaNet ResNet-50 FPN v2",
    "fcos_resnet50_fpn": "FCOS ResNet-50 FPN",
    "ssdlite320_mobilenet_v3_large": "SSDlite 320 MobileNetV3-Large",
}


class DownloadError(ValueError):
    """A download or a copied weights file that was refused; the message says what to do."""


@dataclass(frozen=True)
class PretrainedModel:
    """One torchvision COCO detector as the dialog lists it.

    file_mb: size of the weights file in MB (10^6 bytes); box_map / mask_map: COCO-val2017 mAP in
    percent (mask_map None for box-only models); hash_prefix: the SHA-256 prefix in the file name.
    """

    arch: str
    title: str
    url: str
    num_params: int
    file_mb: float
    box_map: float | None
    mask_map: float | None
    licence: str
    docs: str
    recipe: str

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        return hash_prefix_of(self.file_name)

    @property
    def has_masks(self) -> bool:
        return self.mask_map is not None


def hash_prefix_of(file_name: str) -> str:
    """The SHA-256 prefix a torchvision weights file name carries ("" when it carries none)."""
    match = HASH_REGEX.search(file_name)
    return match.group(1) if match else ""


def _torchvision_licence() -> str:
    try:
        meta = metadata.metadata("torchvision")
    except metadata.PackageNotFoundError:
        return "unknown"
    text = meta.get("License-Expression") or meta.get("License") or "unknown"
    text = text.strip().splitlines()[0] if text.strip() else "unknown"
    return f"torchvision: {text}; COCO annotations: CC BY 4.0"


def catalogue() -> list[PretrainedModel]:
    """The detectors the workbench's views can run, smallest first, read from torchvision's enums."""
    import torchvision.models.detection as det

    licence = _torchvision_licence()
    out = []
    for arch, enum_name in TORCHVISION_COCO_ARCHS.items():
        weights = getattr(det, enum_name).DEFAULT
        meta = weights.meta
        coco = meta.get("_metrics", {}).get("COCO-val2017", {})
        out.append(PretrainedModel(
            arch=arch, title=TITLES.get(arch, arch), url=weights.url, num_params=int(meta.get("num_params", 0)),
            file_mb=float(meta.get("_file_size", 0.0)), box_map=coco.get("box_map"), mask_map=coco.get("mask_map"),
            licence=licence, docs=str(meta.get("_docs", "")).strip(), recipe=str(meta.get("recipe", ""))))
    out.sort(key=lambda m: (m.file_mb, m.arch))
    return out


def model_by_arch(arch: str) -> PretrainedModel:
    for model in catalogue():
        if model.arch == arch:
            return model
    raise DetectorLoadError(f"unknown torchvision detector {arch!r}; known: {', '.join(TORCHVISION_COCO_ARCHS)}")


def hub_checkpoint_dir() -> Path:
    """torch's hub cache for weights, found the way torch finds it but without importing torch:
    ``$TORCH_HOME`` or ``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``, then ``hub/checkpoints``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"
    return Path(os.environ.get("TORCH_HOME") or cache) / "hub" / "checkpoints"


def user_model_dirs(model_folder=None) -> list[Path]:
    """The user's model folder (given, else ``$VISIONBENCH_MODEL_DIR``) as a list; [] when none."""
    first = model_folder or os.environ.get(MODEL_DIR_ENV)
    return [Path(first).expanduser()] if first else []


def weight_dirs(model_folder=None) -> list[Path]:
    """Where weights are looked for, first match wins: the user's model folder, then torch's hub cache."""
    dirs = user_model_dirs(model_folder)
    hub = hub_checkpoint_dir()
    return dirs + ([hub] if hub not in dirs else [])


def find_weights(model: PretrainedModel, model_folder=None) -> Path | None:
    """The local file of ``model``: its torchvision file name in one of ``weight_dirs``, else None."""
    for folder in weight_dirs(model_folder):
        path = folder / model.file_name
        if path.is_file():
            return path
    return None


def weights_for_name(name: str, model_folder=None) -> Path | None:
    """The local weights of the torchvision detector called ``name`` (a builder name such as
    ``fasterrcnn_resnet50_fpn``), for the command line; None when ``name`` is no such name.
    BadInput naming it, and where to put which file, when the weights are not here."""
    from engine.annotations.errors import BadInput
    from engine.infer.detector_api import _find_torchvision_file

    if name not in TORCHVISION_COCO_ARCHS:
        return None
    try:
        return _find_torchvision_file(name, model_folder)
    except DetectorLoadError as exc:
        raise BadInput(name, "CKPT", str(exc).removeprefix(f"{name}: ")) from None


def offline_hint(model: PretrainedModel, dest_dir) -> str:
    """What to do without network: the same file, fetched elsewhere, added from a file."""
    return (f"Offline: on a computer with internet access, download {model.url} (or copy {model.file_name} from "
            f"its torch hub cache), bring the file over, and use Add from file…; it is checked and copied to "
            f"{dest_dir}.")


def check_hash(path, prefix: str) -> tuple[bool, str]:
    """(matches, full SHA-256 hex digest) of ``path`` against a torch.hub hash prefix."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    hexdigest = digest.hexdigest()
    return hexdigest.startswith(prefix), hexdigest


def _network_message(url: str, exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.gaierror):
        why = f"the name {urllib.parse.urlsplit(url).hostname} could not be resolved (no network or no DNS)"
    elif isinstance(reason, ConnectionRefusedError):
        why = "the connection was refused"
    elif isinstance(reason, (TimeoutError, socket.timeout)):
        why = f"no answer within {TIMEOUT_S:.0f} s"
    elif isinstance(exc, urllib.error.HTTPError):
        why = f"the server answered HTTP {exc.code} {exc.reason}"
    else:
        why = f"{type(reason).__name__}: {reason}"
    return f"Cannot download {url}: {why}."


def download_job(token, url: str, dest_dir, offline: str = ""):
    """Job: fetch ``url`` into ``dest_dir`` under its own file name, checked like torch.hub.

    Yields Progress(bytes done, total bytes or None, message); returns {"path", "sha256", "bytes"}.
    Raises DownloadError (network failure: its message ends with ``offline``; a wrong hash: the
    partial file is removed). Cancel removes the partial file as well.
    """
    dest_dir = Path(dest_dir)
    name = url.rsplit("/", 1)[-1]
    prefix = hash_prefix_of(name)
    if not prefix:
        raise DownloadError(f"{url}: the file name carries no hash (expected NAME-<hex>.pth); refused")
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{dest_dir}: cannot create the model folder ({exc.strerror or exc})") from None
    final = dest_dir / name
    partial = dest_dir / (name + ".partial")
    yield Progress(0, None, f"connecting to {urllib.parse.urlsplit(url).netloc}")
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "visionbench"}),
                                          timeout=TIMEOUT_S)
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(" ".join(s for s in (_network_message(url, exc), offline) if s)) from None
    digest = hashlib.sha256()
    done = 0
    try:
        with response, open(partial, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while True:
                try:
                    block = response.read(CHUNK)
                except OSError as exc:
                    raise DownloadError(" ".join(s for s in (_network_message(url, exc), offline) if s)) from None
                if not block:
                    break
                out.write(block)
                digest.update(block)
                done += len(block)
                yield Progress(done, total, f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total
                               else f"{done / 1e6:.1f} MB")
        if total is not None and done != total:
            raise DownloadError(f"Cannot download {url}: the connection ended after {done} of {total} bytes. "
                                f"Try again.")
        hexdigest = digest.hexdigest()
        if not hexdigest.startswith(prefix):
            raise DownloadError(f"{url}: the downloaded file's SHA-256 begins {hexdigest[:len(prefix)]}, torchvision "
                                f"publishes {prefix}; refused and deleted (a damaged or altered file).")
        os.replace(partial, final)
    finally:
        if partial.exists():  # cancelled (GeneratorExit at a yield), failed or refused
            partial.unlink()
    yield Progress(done, done, f"saved {final.name}")
    return {"path": str(final), "sha256": hexdigest, "bytes": done}


def _expected_keys(arch: str) -> set[str]:
    """Parameter and buffer names of torchvision's ``arch`` (built on the meta device: no memory)."""
    import torch
    import torchvision.models.detection as det

    categories = getattr(det, TORCHVISION_COCO_ARCHS[arch]).DEFAULT.meta["categories"]
    with torch.device("meta"):
        model = getattr(det, arch)(weights=None, weights_backbone=None, num_classes=len(categories))
    return set(model.state_dict())


def check_state_dict(path, arch: str) -> None:
    """DetectorLoadError naming ``path`` unless it is a state dict with exactly ``arch``'s keys."""
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same plain message
        raise DetectorLoadError(f"{path}: not a readable PyTorch state dict ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise DetectorLoadError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")
    expected = _expected_keys(arch)
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else ""]
        raise DetectorLoadError(f"{path}: not the weights of {TITLES.get(arch, arch)} ({arch}): its keys do not fit "
                                f"the architecture: {', '.join(p for p in parts if p)}")


def add_weights_file(src, model: PretrainedModel, dest_dir) -> Path:
    """Copy a weights file the user has into ``dest_dir`` under torchvision's name, after checking
    its keys against the architecture and its SHA-256 against the published prefix.

    Raises DetectorLoadError (wrong keys, unreadable) or DownloadError (wrong hash), both naming
    ``src``; nothing is written then. Returns the copied file.
    """
    src = Path(src)
    if not src.is_file():
        raise DetectorLoadError(f"{src}: file not found")
    check_state_dict(src, model.arch)
    ok, hexdigest = check_hash(src, model.hash_prefix)
    if not ok:
        raise DownloadError(f"{src}: its SHA-256 begins {hexdigest[:len(model.hash_prefix)]}, torchvision publishes "
                            f"{model.hash_prefix} for {model.file_name}; refused. Fine-tuned weights can still be "
                            f"opened directly with Browse… in the detector views.")
    dest_dir = Path(dest_dir)
    final = dest_dir / model.file_name
    if final.exists() and final.resolve() == src.resolve():
        return final
    partial = dest_dir / (model.file_name + ".partial")
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, partial)
        os.replace(partial, final)
    except OSError as exc:
        raise DownloadError(f"{final}: cannot write ({exc.strerror or exc})") from None
    finally:
        if partial.exists():
            partial.unlink()
    return final


def add_file_job(token, src: str, arch: str, dest_dir: str):
    """Job around ``add_weights_file`` (reading and hashing 100+ MB takes seconds); returns
    {"path": the copied file}."""
    yield Progress(0, 2, f"checking {Path(src).name}")
    path = add_weights_file(src, model_by_arch(arch), dest_dir)
    yield Progress(2, 2, f"saved {path.name}")
    return {"path": str(path)}
