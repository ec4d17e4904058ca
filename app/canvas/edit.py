"""What the canvas asks the controller to do; the canvas never writes the store itself."""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.annotations.model import Annotation


@dataclass
class EditRequest:
    """One undoable edit. A replace is `delete` + `add` in one request.

    New annotations in `add` have id None; `update` holds full annotations with changed fields;
    `delete` holds annotation ids. Geometry is in image pixels.
    """

    label: str
    add: list[Annotation] = field(default_factory=list)
    update: list[Annotation] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)
