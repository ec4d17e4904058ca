"""One-file model checkpoints: written atomically, read without running pickled code.

File layout (a ``torch.save`` dict): ``{"state_dict": {name: Tensor}, "meta_json": str}``.
Meta is JSON text rather than a nested dict so ``torch.load(weights_only=True)`` can read it
and so it stays readable by any tool; it holds at least ``family``, ``classes`` (list of
names), ``config``, ``metrics`` and the library ``versions`` that wrote the file.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import torch

REQUIRED_META = ("family", "classes", "config", "metrics")
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint could not be written or read; the message names the file."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def library_versions() -> dict[str, str]:
    import torchvision

    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "visionbench": _version("visionbench"),
    }


def _tensor_dict(path: Path, state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(path, f"state_dict entry {key!r} is a {type(value).__name__}, not a tensor")
        # detach + cpu so a checkpoint saved from GPU opens anywhere and holds no graph
        out[str(key)] = value.detach().cpu()
    return out


def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Write ``state_dict`` and ``meta`` into ONE file at ``path``, atomically.

    The data goes to a temp file in the same folder, is fsync'ed, then ``os.replace``d over
    ``path``: a crash or a full disk leaves either the old file or the new one, never half.
    ``meta`` must hold family, classes (list of str), config (dict) and metrics (dict) and be
    JSON-serialisable; library versions are added under ``versions``.
    """
    path = Path(path)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(path, f"meta is missing required field(s): {', '.join(missing)}")
    if not isinstance(meta["classes"], (list, tuple)) or not all(isinstance(c, str) for c in meta["classes"]):
        raise CheckpointError(path, "meta field 'classes' must be a list of class names (strings)")
    full_meta = dict(meta)
    full_meta["classes"] = list(meta["classes"])
    full_meta["versions"] = library_versions()
    full_meta["format_version"] = FORMAT_VERSION
    try:
        meta_json = json.dumps(full_meta, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(path, f"meta is not JSON-serialisable: {exc}") from exc
    payload = {"state_dict": _tensor_dict(path, state_dict), "meta_json": meta_json}

    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise CheckpointError(path, f"could not write checkpoint: {exc}") from exc
        raise
    _fsync_dir(folder)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless no-op where unsupported."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _load_failure(exc: Exception) -> str:
    """Why torch.load refused a file, in one sentence: code in the pickle, or a damaged/foreign file.
    torch's own texts are long (a paragraph about ``weights_only``); only the line that says what
    was found is kept."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    found = re.search(r"unsupported GLOBAL (\S+)|Unsupported global: GLOBAL (\S+)", str(exc))
    if found:
        return ("refused to load: the file's pickle calls " + (found.group(1) or found.group(2)).rstrip(".,")
                + " (only tensors and plain values are loaded, for safety)")
    telling = ("Unsupported operand", "invalid load key", "PytorchStreamReader")
    detail = next((ln for ln in lines if ln.startswith(telling)), lines[0] if lines else type(exc).__name__)
    detail = detail.split(". This is an internal")[0]
    return f"file is corrupt, truncated or not a PyTorch checkpoint ({detail[:160]})"


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`; return ``(state_dict, meta)``.

    Uses ``torch.load(weights_only=True)``, so a file whose pickle would run code is refused
    instead of executed. Every failure (missing, truncated, foreign or malicious file) becomes a
    :class:`CheckpointError` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "checkpoint file does not exist")
    if not path.is_file():
        raise CheckpointError(path, "checkpoint path is not a file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # every failure of torch.load becomes one message naming the file
        raise CheckpointError(path, _load_failure(exc)) from exc
    if not isinstance(payload, dict) or "state_dict" not in payload or "meta_json" not in payload:
        raise CheckpointError(path, "not a Visionbench checkpoint: expected keys 'state_dict' and 'meta_json'")
    state_dict = payload["state_dict"]
    if not isinstance(state_dict, dict):
        raise CheckpointError(path, "field 'state_dict' is not a dict of tensors")
    try:
        meta = json.loads(payload["meta_json"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(path, f"field 'meta_json' is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(path, "field 'meta_json' does not hold a JSON object")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(path, f"meta is missing required field(s): {', '.join(missing)}")
    return state_dict, meta
