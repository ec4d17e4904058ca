"""Progress reports of long annotation work (imports, exports), without any UI.

A `ProgressFn` is called as ``progress(done, total, stage)``: `done` items of `total` finished in
`stage` ("read", "store" or "write"). The CLI turns the calls into a tqdm bar on stderr; the GUI
could turn them into job events.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
# progress(done, total, stage): called by readers and writers once per image (or file), so that
# the CLI can show a bar; stage is "read", "store" or "write".
ProgressFn = Callable[[int, "int | None", str], None]


def ticking(items: Sequence[T], progress: ProgressFn | None, stage: str) -> Iterator[T]:
    """Yield `items`, reporting progress(done, len(items), stage) before the first and after each one.

    Without `progress` this is a plain iteration (no cost in the hot loops).
    """
    if progress is None:
        yield from items
        return
    total = len(items)
    progress(0, total, stage)
    for done, item in enumerate(items, start=1):
        yield item
        progress(done, total, stage)
