"""Run the tiny family through engine.train.loop.fit, alone or under torchrun, and record per
rank what the run did: ``python ddp_main.py OUT_DIR '{"batch_size": 4}'``. Writes
OUT_DIR/ckpt.pt (rank 0) and OUT_DIR/rank<R>.json (losses per step, previews and logs seen)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for engine and tests

from engine.jobs.cancel import CancelToken
from engine.jobs.events import Metrics, Preview
from engine.train.loop import fit
from tests.engine.train.ddp_family import TinyTrainer


def main() -> int:
    out = Path(sys.argv[1])
    config = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    rank = int(os.environ.get("RANK", "0"))
    losses, previews = [], 0
    gen = fit(TinyTrainer, CancelToken(), str(out), str(out / "ckpt.pt"), config)
    try:
        while True:
            event = next(gen)
            if isinstance(event, Metrics) and "loss" in event.values:
                losses.append(event.values["loss"])
            elif isinstance(event, Preview):
                previews += 1
    except StopIteration as stop:
        result = stop.value
    (out / f"rank{rank}.json").write_text(json.dumps({"losses": losses, "previews": previews,
                                                      "steps": result["steps"], "history": result["history"],
                                                      "scored": result["scored"], "weights": result["weights"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
