"""Category colours as arrays: one palette shared by argmax maps, overlays and masks."""
from __future__ import annotations

import numpy as np

BACKGROUND_RGB = (0, 0, 0)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) ints 0..255; ValueError naming the bad value."""
    text = str(color).strip().lstrip("#")
    if len(text) != 6:
        raise ValueError(f"colour {color!r} is not of the form '#rrggbb'")
    try:
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError:
        raise ValueError(f"colour {color!r} is not of the form '#rrggbb'") from None


def class_palette(colors: list[str]) -> np.ndarray:
    """Category colours ['#rrggbb' x C] -> uint8 [C + 1, 3]; row 0 is the background (black)."""
    rows = [BACKGROUND_RGB] + [hex_to_rgb(c) for c in colors]
    return np.asarray(rows, dtype=np.uint8)
