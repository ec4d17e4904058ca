"""Generic training-loop pieces shared by model families.

The loop is a generator: every optimisation step yields a Progress and a Metrics event, which
is also where a job can be cancelled (the runner checks the token after each yield; the loop
also checks it before each step). A non-finite loss stops training BEFORE the update is
applied, so the weights (and the last checkpoint) stay good.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Callable, Iterable, Iterator

import torch

from engine.device import autocast_context
from engine.jobs.events import Metrics, Progress


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the message says where and what was kept."""


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors (possibly nested in tuples/lists/dicts) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


@contextlib.contextmanager
def cpu_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Limit torch's intra-op threads on CPU for the duration (e.g. leave a core for the GUI).

    threads None leaves torch's default; 0 or negative means "all cores but |threads|".
    """
    if device.type != "cpu" or threads is None:
        yield
        return
    before = torch.get_num_threads()
    n = int(threads) if threads > 0 else max(1, (os.cpu_count() or 1) + int(threads))
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def lower_thread_priority(niceness: int | None) -> bool:
    """Make this thread at least ``niceness`` nice (Linux: per thread) so the GUI thread wins
    the CPU.

    A training job started from the workbench runs on its own worker thread; at nice 5 the
    scheduler prefers the GUI thread (nice 0) when both want a core. Never lowers a higher
    inherited value (as root an absolute set would give a thread started from an already-niced
    one MORE priority) and never accumulates when a job runs on the caller's thread again and
    again (tests, CLI). Returns False where unsupported.
    """
    if not niceness or niceness < 0:
        return False
    try:
        import threading

        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, max(os.getpriority(os.PRIO_PROCESS, tid), int(niceness))))
        return True
    except (AttributeError, OSError, PermissionError):
        return False


def make_grad_scaler(device: torch.device) -> torch.amp.GradScaler | None:
    """fp16 autocast needs loss scaling; bf16 and fp32 do not."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.amp.GradScaler("cuda")
    return None


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Any],
                loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor], token, *, device: torch.device,
                epoch: int, step: int, total_steps: int | None, scheduler=None, scaler=None,
                after_step: Callable[[int], Iterator[Any]] | None = None,
                should_end: Callable[[], bool] | None = None) -> Iterator[Any]:
    """One epoch of optimisation; a generator returning ``(mean_loss, last_step)``.

    loss_fn(model, batch_on_device) -> scalar loss tensor. Yields Progress(step, total_steps)
    and Metrics({"loss"}, step) after every step, then whatever ``after_step(step)`` yields
    (previews). Raises NonFiniteLoss without applying the update when the loss is not finite.
    ``should_end()`` True after a step ends the epoch early (time budgets).
    """
    model.train()
    total = 0.0
    count = 0
    for batch in batches:
        token.raise_if_cancelled()
        batch = to_device(batch, device)
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(device):
            loss = loss_fn(model, batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLoss(f"the loss became {value} at epoch {epoch}, step {step + 1}")
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        step += 1
        total += value
        count += 1
        yield Progress(step, total_steps, f"epoch {epoch}: loss {value:.4f}")
        yield Metrics({"loss": value}, step)
        if after_step is not None:
            yield from after_step(step)
        if should_end is not None and should_end():
            break
    return (total / count if count else float("nan")), step
