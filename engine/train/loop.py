"""The one training loop every model family runs on.

A family subclasses :class:`Trainer` and supplies only what differs: ``setup`` (read data, build
the model and its optimisers), ``batches`` (one epoch), ``loss`` (a dict of loss terms, "loss"
the total) or, for several optimisers or an image as the parameter, ``step``; ``validate``
(metrics, one of them ``metric``, higher is better) and ``previews``. :func:`fit` owns the rest:

- steps, cancel (at every yield), pause / resume / single steps (``CancelToken.wait_if_paused``);
- the NaN policy: a non-finite loss stops the run BEFORE the update; the last good checkpoint stays;
- the LR schedule: linear warm-up, then cosine decay to 2 % over the steps, or, under a time
  budget, over the wall-clock time left (it reaches its floor at the deadline however fast the
  steps turn out to be);
- the time budget (``max_seconds``): no step starts when the time left would not hold it and the
  last validation; then the model is validated and saved, so the run ends within the budget;
- CPU threads: all cores but one, for every family (two OpenMP threads fighting over one free
  core made steps several times slower on a loaded 2-core machine); the worker's nice value;
- the best-checkpoint rule: after each validation the checkpoint is written (atomically) when the
  family's metric is at least as good as before, so predicting during training uses the best so far;
- the rate of previews and validations;
- several processes under torchrun (engine.train.distributed): DDP, BatchNorm over the whole
  batch, one data order split between the ranks (engine.train.sampling), stop decisions and the
  clock of a time budget's schedule taken together, the validation split between the ranks
  (families answering ``val_items``; the parts gathered make the metric of the whole split),
  rank 0 alone writing;
- resume: the training state (latest model, optimisers, step, epoch, RNG, best, history) is
  written beside the checkpoint as ``CKPT.state`` at each validation and when a run is
  stopped; ``config["resume"] = CKPT`` continues from it, batch for batch.

Events: Progress and Metrics (every loss term and "lr") after every step; Previews every
``preview_every`` steps and after each validation; Metrics with "val_"-prefixed validation
metrics and "epoch"; Log lines. See docs/adr/0018-one-training-loop.md.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

from engine.annotations.errors import BadInput
from engine.device import autocast_context, pick_device, seed_everything
from engine.jobs.cancel import CancelToken, JobCancelled
from engine.jobs.events import Event, Log, Metrics, Preview, Progress
from engine.jobs.priority import lower_thread_priority
from engine.models.checkpoint import save_checkpoint
from engine.train import distributed
from engine.train.resume import load_state, restore_rng, rng_state, save_state, state_path
from engine.train.sampling import make_loader

__all__ = ["LOOP_DEFAULTS", "NonFiniteLoss", "Trainer", "cpu_threads", "fit", "lower_thread_priority",
           "make_grad_scaler", "to_device"]

# Keys the loop reads; a family's preset may override any of them.
LOOP_DEFAULTS: dict[str, Any] = {
    "epochs": 10,            # an upper bound when max_seconds is set
    "max_seconds": None,     # time budget for the whole run (seconds), None = none
    "max_steps": None,       # stop after this many steps (tests, quick looks)
    "warmup_steps": 20,
    "lr_floor": 0.02,        # the cosine decays to this fraction of each group's rate
    "clip_grad": None,       # max gradient norm, None = no clipping
    "eval_every": 1,         # validate every N epochs (and always at the end)
    "preview_every": 0,      # preview every N steps (0 = only after validations)
    "cpu_threads": -1,       # all cores but one; None leaves torch's default
    "nice": None,            # raise the worker thread's nice value (the workbench uses 5)
    "seed": 0,
    "resume": None,          # a checkpoint whose CKPT.state to continue from
}


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


def thread_count(threads: int | None) -> int | None:
    """torch intra-op threads for a setting: None -> None (torch's default); n > 0 -> n;
    0 or negative -> all cores but |n| (at least one)."""
    if threads is None:
        return None
    n = int(threads) if int(threads) > 0 else (os.cpu_count() or 1) + int(threads)
    return max(1, n)


@contextlib.contextmanager
def cpu_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Limit torch's intra-op threads on the CPU for the duration (see :func:`thread_count`)."""
    n = thread_count(threads)
    if device.type != "cpu" or n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_grad_scaler(device: torch.device) -> torch.amp.GradScaler | None:
    """fp16 autocast needs loss scaling; bf16 and fp32 do not."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.amp.GradScaler("cuda")
    return None


def check_finite(losses: dict[str, torch.Tensor], where: str) -> float:
    """The total loss as a float; NonFiniteLoss (before any update) when it is NaN or infinite."""
    value = float(losses["loss"].detach())
    if not math.isfinite(value):
        raise NonFiniteLoss(f"the loss became {value} at {where}")
    return value


class Trainer:
    """What a family supplies to :func:`fit`. Subclasses set ``family``, ``kind`` and ``metric``
    and override the hooks; ``self.cfg``, ``self.device``, ``self.token``, ``self.store_path``
    are set before ``setup`` runs.

    Attributes a subclass sets in ``setup``: ``model`` (an nn.Module, saved by ``state_dict``)
    and ``optimizers`` (a list; the loop sets every param group's lr from its schedule, relative
    to the lr the group had when built).
    """

    family: str = ""
    kind: str = ""
    metric: str = "loss"  # the key of validate()'s dict that picks the best checkpoint (higher wins)
    defaults: dict[str, Any] = {}  # family defaults under the preset (e.g. clip_grad)
    # DDP looks for parameters a step's loss did not reach (a backbone's unused classifier head, a
    # loss that skips a branch); a family sure to use every trainable parameter may set False (faster)
    ddp_find_unused = True
    resumable = True  # False: no CKPT.state (e.g. an optimisation whose output is a picture)

    def __init__(self, cfg: dict, device: torch.device, token: CancelToken, store_path: str) -> None:
        self.cfg = cfg
        self.device = device
        self.token = token
        self.store_path = store_path
        self.model: torch.nn.Module | None = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self.scaler = make_grad_scaler(device)
        self.dist = distributed.Dist()  # set by fit(); rank / world size under torchrun

    def make_loader(self, dataset, batch_size: int, *, shuffle: bool = True, drop_last: bool = False,
                    collate_fn=None):
        """The training loader every family should use: one seeded order per epoch, split between
        the ranks of a distributed run, resumable mid-epoch (engine.train.sampling)."""
        return make_loader(dataset, batch_size, int(self.cfg.get("seed") or 0), shuffle=shuffle,
                           drop_last=drop_last, collate_fn=collate_fn, rank=self.dist.rank,
                           world=self.dist.world)

    # -- hooks ----------------------------------------------------------------------------
    def setup(self) -> Iterator[Event]:
        """Read the data, build ``model`` and ``optimizers``. May yield Log events."""
        raise NotImplementedError
        yield  # pragma: no cover

    def batches(self) -> Iterable[Any]:
        """One epoch of batches (moved to the device by the loop)."""
        raise NotImplementedError

    def steps_per_epoch(self) -> int:
        return len(self.batches())  # type: ignore[arg-type]

    def batch_size_per_process(self) -> int | None:
        """Items in one process's batch (the history states it for a distributed run)."""
        return self.cfg.get("batch_size")

    def loss(self, batch: Any) -> dict[str, torch.Tensor]:
        """Loss terms of one batch; "loss" is the total that is minimised."""
        raise NotImplementedError

    def step(self, batch: Any, where: str) -> dict[str, float]:
        """One optimisation step; returns the loss terms as floats. The default: one optimiser
        over ``loss``. Override for several optimisers; call :func:`check_finite` before any
        update so a NaN never reaches the weights."""
        opt = self.optimizers[0]
        self.model.train()
        with autocast_context(self.device):
            losses = self.loss(batch)
        check_finite(losses, where)
        opt.zero_grad(set_to_none=True)
        clip = self.cfg.get("clip_grad")
        if self.scaler is not None:
            self.scaler.scale(losses["loss"]).backward()
            if clip:
                self.scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(clip))
            self.scaler.step(opt)
            self.scaler.update()
        else:
            losses["loss"].backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(clip))
            opt.step()
        return {k: float(v.detach()) for k, v in losses.items()}

    def validate(self) -> dict[str, Any]:
        """Metrics on the validation data ({} when there is none). A family that implements
        ``val_items`` / ``validate_part`` / ``validate_merge`` needs no override: this merges the
        one part of the whole split, as a distributed run merges the parts of its ranks."""
        n = self.val_items()
        if n is None:
            return {}
        return self.validate_merge([self.validate_part(range(n))])

    # Validation split between the ranks of a distributed run (each scores a share, the metric is
    # that of the whole split). A family opts in by answering val_items.
    val_block = 1  # items are shared out in whole blocks of this many (a family's evaluation batch)

    def val_items(self) -> int | None:
        """How many validation items ``validate_part`` can score; None: ``validate`` runs whole
        (on every rank of a distributed run)."""
        return None

    def validate_part(self, items: range) -> Any:
        """What scoring the validation items ``items`` contributes (sufficient statistics, such as
        a confusion matrix, or per-item results), picklable."""
        raise NotImplementedError

    def validate_merge(self, parts: list) -> dict[str, Any]:
        """``validate``'s metrics from the parts of consecutive shares of the split, in order."""
        raise NotImplementedError

    def previews(self, step: int) -> Iterator[Preview]:
        """Live views of the model now."""
        return iter(())

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def save(self, out: Path, meta: dict) -> None:
        """Write what the run has made so far to ``out`` (a checkpoint; an optimisation whose
        parameter is a picture writes the picture instead)."""
        save_checkpoint(out, self.state_dict(), meta)

    def cancelled(self, out: Path) -> None:
        """The run was cancelled. Training keeps its last good checkpoint and needs nothing here;
        an optimisation keeps its current picture."""

    def meta(self) -> dict:
        """Checkpoint metadata besides family, kind, config, metrics (e.g. classes, colors)."""
        return {}

    def result(self) -> dict:
        """Extra entries for the job's result dict."""
        return {}


def _saved_config(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in ("device", "max_steps", "max_seconds", "time_limit_s",
                                                      "nice", "resume")}


def resolve_config(trainer_cls: type[Trainer], config: dict | None, preset: dict | None = None) -> dict:
    cfg = {**LOOP_DEFAULTS, **trainer_cls.defaults, **(preset or {}), **(config or {})}
    if cfg.get("time_limit_s") and not cfg.get("max_seconds"):
        cfg["max_seconds"] = cfg["time_limit_s"]  # the older name of the same budget
    for key in ("epochs", "warmup_steps", "eval_every", "preview_every"):
        try:
            cfg[key] = int(cfg[key])
        except (TypeError, ValueError):
            raise BadInput("config", key, f"must be an integer, got {cfg[key]!r}") from None
    if cfg["epochs"] < 1:
        raise BadInput("config", "epochs", f"must be at least 1, got {cfg['epochs']}")
    if cfg.get("max_seconds") is not None:
        try:
            cfg["max_seconds"] = float(cfg["max_seconds"])
        except (TypeError, ValueError):
            raise BadInput("config", "max_seconds",
                           f"must be a number of seconds, got {cfg['max_seconds']!r}") from None
        if not cfg["max_seconds"] > 0:
            cfg["max_seconds"] = None
    return cfg


def fit(trainer_cls: type[Trainer], token: CancelToken, store_path: str, out: str, config: dict | None = None,
        preset: dict | None = None) -> Iterator[Event]:
    """Train ``trainer_cls`` on the project at ``store_path``; the best checkpoint goes to ``out``.

    A job generator (see engine.jobs). Returns {"checkpoint", "family", "metric", "best",
    "metrics" (the best validation), "history", "steps", "epochs", "seconds", "device", "stopped"}.
    """
    started = time.perf_counter()
    cfg = resolve_config(trainer_cls, config, preset)
    lower_thread_priority(cfg.get("nice"))
    d = distributed.current()
    device = d.device(pick_device(cfg.get("device") or "auto"))
    if not cfg.get("resume") and d.active and int(os.environ.get("TORCHELASTIC_RESTART_COUNT") or 0) > 0 \
            and state_path(out).is_file():
        cfg["resume"] = str(out)  # torchrun restarted the workers after a failure: go on from the last state
    resumed = load_state(cfg["resume"], trainer_cls.family, d) if cfg.get("resume") else None
    d.init(device)
    # Ranks start from rank 0's weights (broadcast below) but draw their own augmentations.
    seed_everything(int(cfg.get("seed") or 0) + d.rank)
    out = Path(out)
    trainer = trainer_cls(cfg, device, token, str(store_path))
    trainer.dist = d
    with cpu_threads(device, cfg.get("cpu_threads")):
        result = yield from _run(trainer, token, out, cfg, device, started, resumed)
    d.barrier()  # rank 0 has written its last file; then every rank leaves the group together
    d.close()
    return result


def _distribute(trainer: Trainer, device: torch.device):
    """Under torchrun: rank 0's weights everywhere, BatchNorm over all ranks, and either a DDP
    wrapper (returned; the loop puts it in ``trainer.model`` for the length of each step) or,
    for a family with its own ``step``, gradients averaged before every optimiser step."""
    d = trainer.dist
    model = trainer.model
    for t in list(model.state_dict().values()):
        torch.distributed.broadcast(t, src=0)
    distributed.sync_batchnorm(model, device)
    if type(trainer).step is Trainer.step:
        return distributed.ModelDDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                                    find_unused_parameters=trainer.ddp_find_unused)
    for opt in trainer.optimizers:
        params = [p for g in opt.param_groups for p in g["params"]]
        opt.register_step_pre_hook(lambda *_, params=params: distributed.average_gradients(params, d.world))
    return None


def _validate(trainer: Trainer) -> dict[str, Any]:
    """The validation metrics; under torchrun each rank scores its share of the split (when the
    family can split it) and the parts of all ranks make the metric of the whole split."""
    d = trainer.dist
    n = trainer.val_items() if d.active else None
    if n is None:
        return trainer.validate()
    return trainer.validate_merge(d.gather(trainer.validate_part(d.shard(n, trainer.val_block))))


def _run(trainer: Trainer, token: CancelToken, out: Path, cfg: dict, device: torch.device,
         started: float, resumed: dict | None = None) -> Iterator[Event]:
    clock = {"paused": 0.0}
    d = trainer.dist

    def now() -> float:
        """Seconds of the run so far, time spent paused not counted."""
        return time.perf_counter() - started - clock["paused"]

    yield from trainer.setup()
    ddp = _distribute(trainer, device) if d.active else None
    if d.active:
        yield Log(f"rank {d.rank} of {d.world} on {device} ({'DDP' if ddp is not None else 'averaged gradients'}); "
                  f"batch size per process {trainer.batch_size_per_process() or '?'}")
    spe = max(1, trainer.steps_per_epoch())
    epochs = int(cfg["epochs"])
    max_steps = int(cfg["max_steps"]) if cfg.get("max_steps") else None
    total = epochs * spe if max_steps is None else min(epochs * spe, max_steps)
    budget = cfg.get("max_seconds")
    warm = max(1, min(int(cfg["warmup_steps"]), max(1, total // 10)))
    floor = float(cfg["lr_floor"])
    for opt in trainer.optimizers:
        for g in opt.param_groups:
            g.setdefault("base_lr", g["lr"])
    timing = {"val": None, "step": None}
    if resumed is not None:
        trainer.model.load_state_dict(resumed["model"])
        for opt, state in zip(trainer.optimizers, resumed["optimizers"]):
            opt.load_state_dict(state)
        if trainer.scaler is not None and resumed.get("scaler"):
            trainer.scaler.load_state_dict(resumed["scaler"])
        clock["paused"] -= float(resumed["seconds"])  # the clock goes on from where the run stopped
        if budget:
            budget = float(budget) + float(resumed["seconds"])  # --time on a resume: this much more
        timing.update(resumed.get("timing") or {})

    def reserve() -> float:
        # Seconds kept for what follows the last step: one more step in flight, the last
        # validation, previews and the checkpoint (a share of the budget until they are timed).
        step_s = timing["step"] or 0.0
        if timing["val"] is None:
            return 0.05 * float(budget) + 2.0 * step_s
        return 1.25 * timing["val"] + 1.5 * step_s + 1.0

    train_start = [now()]

    def time_fraction() -> float:
        end = float(budget) - reserve()
        return (now() - train_start[0]) / max(1e-6, end - train_start[0])

    def lr_factor(step: int, elapsed: float | None = None) -> float:
        """elapsed: the fraction of the budget gone, as the ranks agreed on it (else this clock's)."""
        if step < warm:
            return 0.1 + 0.9 * step / warm
        if budget:
            t = time_fraction() if elapsed is None else elapsed
        else:
            t = (step - warm) / max(1, total - warm)
        t = min(1.0, max(0.0, t))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))

    def out_of_time() -> bool:
        return bool(budget) and now() + reserve() > float(budget)

    best: dict | None = None
    history: list[dict] = []
    step = 0
    epoch = 0
    in_epoch = 0  # steps done in the current epoch
    skip = 0
    stopped = "epochs"
    if resumed is not None:
        best, history = resumed["best"], list(resumed["history"])
        step, epoch, skip = int(resumed["step"]), int(resumed["epoch"]), int(resumed["in_epoch"])
    metric = trainer.metric
    last_validated = -1
    every = int(cfg["preview_every"])
    train_start[0] = now()

    def validate_and_save(epoch: int, save: bool = True) -> Iterator[Event]:
        nonlocal best, last_validated
        t0 = time.perf_counter()
        metrics = dict(_validate(trainer))
        timing["val"] = time.perf_counter() - t0
        last_validated = step
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        row = {"epoch": epoch, "step": step, "seconds": round(now(), 2), **scalars}
        if d.active:  # batch_size is per process: say how many there were
            row.update(processes=d.world, batch_size_per_process=trainer.batch_size_per_process())
        history.append(row)
        yield Metrics({**{f"val_{k}": v for k, v in scalars.items()}, "epoch": float(epoch)}, step)
        if d.main:
            yield from trainer.previews(step)
        value = metrics.get(metric)
        if not save:
            return
        improved = best is None or value is None or best.get(metric) is None or float(value) >= float(best[metric])
        if improved:
            best = {**metrics, "epoch": epoch, "step": step}
        if improved and d.main:
            trainer.save(out, {
                "family": trainer.family, "kind": trainer.kind, "config": _saved_config(cfg),
                "metrics": best, "epoch": epoch, "step": step, "metric": metric,
                "project": str(Path(trainer.store_path).resolve()), "device": str(device), "processes": d.world,
                "history": list(history), **trainer.meta()})
            said = f"{metric} {float(value):.3f} (best so far)" if value is not None else "no validation data"
            yield Log(f"epoch {epoch}, step {step}: {said} -> saved {out.name}")
        elif not improved:
            yield Log(f"epoch {epoch}, step {step}: {metric} {float(value):.3f} "
                      f"(best {float(best[metric]):.3f} at epoch {best['epoch']})")

    yield Progress(step, total, f"{trainer.family}: training" + (f" (resumed at step {step})" if step else ""))
    if budget and resumed is None:
        # Under a budget the last validation must fit in it: validate the untrained model once
        # to learn what a validation costs (and to start the curves from where training starts).
        # Not saved: an untrained model is no checkpoint to keep.
        yield from validate_and_save(0, save=False)
    train_start[0] = now() if resumed is None else float(resumed.get("train_start", 0.0))
    if resumed is not None:
        restore_rng(resumed["rng"][d.rank if d.rank < len(resumed["rng"]) else 0])

    def keep_state() -> None:
        if not trainer.resumable or trainer.model is None:
            return
        states = d.gather(rng_state())  # every rank's RNG, so each continues its own stream
        if not d.main:
            return
        # epoch: epochs finished (and validated); in_epoch: steps done in the one after them
        done = in_epoch >= spe and last_validated == step
        save_state(out, trainer, {"step": step, "epoch": epoch if done else max(0, epoch - 1),
                                  "in_epoch": 0 if done else in_epoch, "seconds": now(),
                                  "train_start": train_start[0], "timing": dict(timing), "best": best,
                                  "history": history, "rng": states})

    try:
        while epoch < epochs and stopped == "epochs":
            epoch += 1
            batches = trainer.batches()
            sampler = getattr(batches, "sampler", batches)  # a DataLoader's sampler, or a batch sampler itself
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch, skip)
            elif skip:
                batches = itertools.islice(batches, skip, None)
            in_epoch, skip = skip, 0
            for batch in batches:
                late = step > 0 and out_of_time()  # at least one step, however small the budget
                elapsed = None
                if d.active:
                    # one collective a step: the ranks stop together and, under a budget, follow one
                    # clock (the latest), so that every rank sets the same learning rate
                    late, cancelled, elapsed = d.all_max([late, token.cancelled, time_fraction() if budget else 0.0])
                    late = late > 0
                    if cancelled > 0:
                        token.cancel()
                if late:
                    stopped = "budget"
                    break
                token.raise_if_cancelled()
                if token.paused:
                    t_pause = time.perf_counter()
                    token.wait_if_paused()
                    clock["paused"] += time.perf_counter() - t_pause
                t_step = time.perf_counter()
                factor = lr_factor(step, elapsed)
                for opt in trainer.optimizers:
                    for g in opt.param_groups:
                        g["lr"] = g["base_lr"] * factor
                where = f"epoch {epoch}, step {step + 1}"
                if ddp is not None:
                    raw, trainer.model = trainer.model, ddp
                    try:
                        values = trainer.step(to_device(batch, device), where)
                    finally:
                        trainer.model = raw
                else:
                    values = trainer.step(to_device(batch, device), where)
                values = d.all_mean(values)
                step += 1
                in_epoch += 1
                dt = time.perf_counter() - t_step
                timing["step"] = dt if timing["step"] is None else 0.9 * timing["step"] + 0.1 * dt
                if trainer.optimizers:
                    values["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
                if budget and timing["step"]:
                    # whichever ends first: the steps that fit in the time left, or the epochs
                    left = max(0.0, float(budget) - reserve() - now())
                    total = min(step + int(left / timing["step"]), epochs * spe)
                    if max_steps is not None:
                        total = min(total, max_steps)
                yield Progress(step, total, f"epoch {epoch}: loss {values.get('loss', float('nan')):.4f}")
                yield Metrics(values, step)
                if every and step % every == 0 and d.main:
                    yield from trainer.previews(step)
                if max_steps is not None and step >= max_steps:
                    stopped = "steps"
                    break
            else:
                if epoch % max(1, int(cfg["eval_every"])) == 0 or epoch == epochs:
                    yield from validate_and_save(epoch)
                    keep_state()
                continue
            break
    except (JobCancelled, GeneratorExit, KeyboardInterrupt) as exc:
        if isinstance(exc, JobCancelled):
            keep_state()  # a stopped run can be resumed from its last step
        if d.main:
            trainer.cancelled(out)
        raise
    except NonFiniteLoss as exc:
        kept = (f"the last good checkpoint (epoch {best['epoch']}) is kept at {out}" if best is not None
                else "no checkpoint was written")
        lr = cfg.get("lr") or (trainer.optimizers[0].param_groups[0]["base_lr"] if trainer.optimizers else None)
        raise NonFiniteLoss(f"{trainer.family}: {exc}; training stopped before the update, {kept}. "
                            f"Try a lower learning rate (config 'lr', now {lr}).") from None
    if last_validated != step:
        if stopped == "budget":
            yield Log(f"time budget {float(budget):.0f} s: training stops at step {step} (epoch {epoch})")
        yield from validate_and_save(epoch)
    keep_state()
    if total != step:  # the estimate under a budget: the bar ends full
        yield Progress(step, step, f"{trainer.family}: done after {step} steps ({stopped})")
    seconds = round(time.perf_counter() - started, 2)
    return {"checkpoint": str(out), "family": trainer.family, "metric": metric, "best": best,
            "metrics": best, "history": history, "steps": step, "epochs": epoch, "seconds": seconds,
            "device": str(device), "stopped": stopped, **trainer.result()}
