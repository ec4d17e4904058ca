"""Run families that draw their own batches (pix2pix, siamese, fast style) through
engine.train.loop.fit, alone or under torchrun, and record per rank which items each epoch's
batches held: ``python ddp_families_main.py OUT_DIR '[{"family": ..., "project": ..., "config": {...}}]'``.
Writes OUT_DIR/<family>-rank<R>.json ({"items": {epoch: [item, ...]}, "losses": [...]})."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for engine and tests

from engine.jobs.cancel import CancelToken
from engine.jobs.events import Metrics
from engine.models.registry import get_family
from engine.train.loop import fit


def recording(trainer_cls: type, seen: dict) -> type:
    """``trainer_cls`` whose batch order (the loader's sampler, or the batch sampler itself)
    notes every item it hands out, under the epoch it belongs to."""

    class Recorded(trainer_cls):
        def setup(self):
            yield from super().setup()
            order = getattr(self.loader, "sampler", self.loader)
            base = type(order)

            class Noted(base):
                def __iter__(inner):
                    for item in base.__iter__(inner):
                        index = item[0] if isinstance(item, tuple) else item  # a P x K batch: its items
                        seen.setdefault(str(inner.epoch), []).extend(
                            index.tolist() if hasattr(index, "tolist") else [int(index)])
                        yield item

            order.__class__ = Noted

    return Recorded


def main() -> int:
    out = Path(sys.argv[1])
    runs = json.loads(sys.argv[2])
    rank = int(os.environ.get("RANK", "0"))
    for run in runs:
        spec = get_family(run["family"])
        seen: dict = {}
        losses = []
        config = {**spec.preset("cpu"), **run["config"], "device": "cpu"}
        gen = fit(recording(spec.trainer_class(), seen), CancelToken(), run["project"],
                  str(out / f"{run['family']}.ckpt"), config)
        try:
            while True:
                event = next(gen)
                if isinstance(event, Metrics) and "loss" in event.values:
                    losses.append(event.values["loss"])
        except StopIteration as stop:
            result = stop.value
        (out / f"{run['family']}-rank{rank}.json").write_text(json.dumps(
            {"items": seen, "losses": losses, "steps": result["steps"], "history": result["history"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
