"""``visionbench train``: train any registered family on a project (family-agnostic)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from engine.annotations.errors import BadInput
from engine.device import pick_device
from engine.jobs.cancel import CancelToken
from engine.jobs.events import Log, Metrics, Preview, Progress
from engine.models.registry import get_family
from engine.train import distributed


class EventPrinter:
    """Turn job events into a tqdm bar on stderr (stdout stays free for JSON)."""

    def __init__(self, desc: str) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = None
        self.desc = desc

    def __call__(self, event: Any) -> None:
        if isinstance(event, Progress):
            if self.bar is None:
                # disable=None: no bar when stderr is not a terminal (logs, CI), as every command
                self.bar = self._tqdm(total=event.total, desc=self.desc, file=sys.stderr, dynamic_ncols=True,
                                      disable=None)
            if event.total is not None and self.bar.total != event.total:
                self.bar.total = event.total
            self.bar.n = event.step
            if event.message:
                self.bar.set_postfix_str(event.message, refresh=False)
            self.bar.refresh()
        elif isinstance(event, Log):
            (self._tqdm.write if self.bar is not None else print)(f"[{event.level}] {event.text}", file=sys.stderr)
        elif isinstance(event, Metrics) and any(k.startswith("val_") for k in event.values) and self.bar is not None:
            self.bar.set_postfix({k: round(v, 4) for k, v in event.values.items() if isinstance(v, float)})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def event_sink(progress, desc: str) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """progress None/True -> tqdm on stderr; False -> silent; a callable -> called per event."""
    if progress is False:
        return (lambda e: None), (lambda: None)
    if callable(progress):
        return progress, (lambda: None)
    printer = EventPrinter(desc)
    return printer, printer.close


def preview_writer(folder: str | Path, on_event: Callable[[Any], None]) -> Callable[[Any], None]:
    """Pass every event on, and write each Preview as ``folder/<name>.png`` (the latest of each
    name, rendered by its kind), so a run without a screen can be watched too."""
    import re

    import cv2

    from engine.viz.previews import render

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def sink(event: Any) -> None:
        if isinstance(event, Preview):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", event.name).strip("._") or "preview"
            picture = render(event)
            tmp = folder / f".{name}.tmp.png"
            if cv2.imwrite(str(tmp), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
                tmp.replace(folder / f"{name}.png")
        on_event(event)

    return sink


def drive(gen, on_event: Callable[[Any], None]):
    """Run a job generator on this thread, feeding events to ``on_event``; return its result.

    Unlike the job runner, exceptions propagate unchanged (BadInput -> CLI exit 2).
    """
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        on_event(event)


def _stop_message_on_sigterm(rank, out) -> None:
    """torchrun ends the other processes with SIGTERM when one of them dies: say so, then exit 1."""
    import signal

    def stop(signum, frame):
        kept = f"the last good checkpoint is kept at {out}" if Path(out).is_file() else "no checkpoint was written"
        print(f"visionbench train: rank {rank.rank} of {rank.world} stopped because another process of the run "
              f"ended (torchrun's report names it); {kept}. Continue with --resume {out}.", file=sys.stderr)
        raise SystemExit(1)

    signal.signal(signal.SIGTERM, stop)


def train_command(family: str, project: str | Path, out: str | Path, epochs: int | None = None,
                  device: str = "auto", seed: int = 0, config: dict | None = None, progress=None,
                  minutes: float | None = None, previews_dir: str | Path | None = None,
                  resume: str | Path | None = None) -> dict | None:
    """Train ``family`` on ``project``; write the checkpoint ``out``; return the job's result dict.

    The config is the family's preset for the device, updated with ``config``, ``epochs`` and
    ``minutes`` (the time budget, as config "max_seconds"; 0 = none). ``resume``: a checkpoint
    whose ``CKPT.state`` to continue from (torchrun's restart of a failed run resumes from
    ``out``'s state by itself). Under torchrun only rank 0 reports progress, writes previews and
    returns the result (the other ranks return None).
    Raises BadInput for a missing project / unknown family / bad config, NonFiniteLoss when
    the loss diverges (the last good checkpoint stays).
    """
    try:
        spec = get_family(family)
    except ValueError as exc:
        raise BadInput(str(family), "family", str(exc)) from None
    project = Path(project)
    if not project.is_file():
        raise BadInput(str(project), "project", "file not found")
    try:
        dev = pick_device(device)
    except ValueError as exc:
        raise BadInput(str(device), "device", str(exc)) from None
    cfg = spec.preset(dev.type)
    cfg.update(config or {})
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    if minutes is not None:
        if minutes < 0 or minutes != minutes:
            raise BadInput(str(minutes), "--time", "must be a number of minutes >= 0")
        cfg["max_seconds"] = float(minutes) * 60.0 if minutes > 0 else None
    cfg["seed"] = int(seed)
    cfg["device"] = str(dev)
    rank = distributed.current()
    if resume is not None:
        cfg["resume"] = str(resume)
    if rank.active:
        _stop_message_on_sigterm(rank, out)
    if not rank.main:
        drive(spec.train(CancelToken(), str(project), str(out), cfg), lambda event: None)
        return None
    on_event, close = event_sink(progress, f"train {family}")
    if previews_dir is not None:
        on_event = preview_writer(previews_dir, on_event)
    try:
        return drive(spec.train(CancelToken(), str(project), str(out), cfg), on_event)
    finally:
        close()
