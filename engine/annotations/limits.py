"""What may enter a project: names, attribute text, ids and numbers that every format can write
back and read again, and the bounds that keep a small malformed file from costing gigabytes.

Readers call these with the file and field they are reading, so a refusal names both; the
import checks every bundle once more (`validate_bundle`) before anything is stored, so a reader
that forgot a check cannot let a bad value into the store.
"""
from __future__ import annotations

import math
import re
from typing import Any

from .errors import BadInput

# Names travel as lines of class_names.txt/classes.txt, YAML scalars and XML text: a line break,
# a NUL or another control character there splits, shifts or breaks them on the way back; a
# U+FEFF first in a text file is read as its byte-order mark and vanishes.
# Points may lie this many pixels outside the image: tools write 500.0000001 for a 500-px
# image, and LabelMe lets a drag end a little past the border.
COORD_TOLERANCE = 1.0
MAX_NAME_CHARS = 256
_BAD_NAME_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
# Attribute text (descriptions, poses, flags) may hold line breaks and tabs; XML cannot hold the
# other C0 controls, and a lone surrogate cannot be written as UTF-8 at all.
MAX_TEXT_CHARS = 10_000
_BAD_TEXT_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_ATTRIBUTE_DEPTH = 16
MAX_ATTRIBUTE_ITEMS = 10_000  # values in one annotation's attributes, all levels together
# ids are written as JSON numbers; beyond 2**53 other tools' JSON readers lose digits
MAX_ID = 2 ** 53 - 1
# An annotation file bigger than this is refused before it is parsed (images are not annotation files).
MAX_ANNOTATION_FILE_BYTES = 512 * 1024 * 1024
# Decoding a mask costs a byte per pixel; a class PNG or RLE larger than this is refused (the
# error states the budget). 40,000 x 40,000 images still import their boxes and polygons.
MASK_PIXEL_BUDGET = 200_000_000


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def check_name(value: Any, file: str, field: str) -> str:
    """A category name as stored: a non-empty string, stripped, without control characters or
    line breaks, at most MAX_NAME_CHARS long. BadInput otherwise."""
    if not isinstance(value, str):
        raise BadInput(str(file), field, f"expected a non-empty string, got {_short(value)}")
    if len(value) > MAX_NAME_CHARS * 4:  # before strip(): a 300 MB name is not copied
        raise BadInput(str(file), field, f"{len(value)} characters; a name has at most {MAX_NAME_CHARS}")
    name = value.strip()
    if not name:
        raise BadInput(str(file), field, "must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise BadInput(str(file), field, f"{len(name)} characters; a name has at most {MAX_NAME_CHARS}")
    bad = _BAD_NAME_CHAR.search(name)
    if bad:
        raise BadInput(str(file), field, f"{name[:40]!r} contains the control character {_describe(bad.group())}; "
                       "names cannot hold line breaks or control characters (they would split or change "
                       "in class lists, YAML and XML)")
    return name


def check_text(value: str, file: str, field: str) -> str:
    """Attribute text: CR LF and lone CR become LF (XML turns them into LF anyway); other control
    characters (except tab and LF) are refused, as is text over MAX_TEXT_CHARS."""
    if len(value) > MAX_TEXT_CHARS:
        raise BadInput(str(file), field, f"{len(value)} characters; text fields hold at most {MAX_TEXT_CHARS}")
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    bad = _BAD_TEXT_CHAR.search(value)
    if bad:
        raise BadInput(str(file), field, f"contains the control character {_describe(bad.group())}")
    return value


def check_attributes(attrs: Any, file: str, field: str) -> dict:
    """An attributes dict as stored: string keys, JSON values, finite numbers, integers in
    +-2**63, text checked by `check_text`, at most MAX_ATTRIBUTE_DEPTH levels and
    MAX_ATTRIBUTE_ITEMS values. Returns a cleaned copy (line breaks normalized)."""
    if not isinstance(attrs, dict):
        raise BadInput(str(file), field, "expected an object")
    if not attrs:
        return {}
    count = [0]

    def clean(v: Any, depth: int, where: str) -> Any:
        count[0] += 1
        if count[0] > MAX_ATTRIBUTE_ITEMS:
            raise BadInput(str(file), field, f"more than {MAX_ATTRIBUTE_ITEMS} values")
        if depth > MAX_ATTRIBUTE_DEPTH:
            raise BadInput(str(file), field, f"nested deeper than {MAX_ATTRIBUTE_DEPTH} levels")
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            if not -2 ** 63 <= v < 2 ** 63:
                raise BadInput(str(file), where, f"integer {_short(v)} does not fit 64 bits")
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise BadInput(str(file), where, f"not a finite number: {v!r}")
            return v
        if isinstance(v, str):
            return check_text(v, file, where)
        if isinstance(v, (list, tuple)):
            return [clean(x, depth + 1, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    raise BadInput(str(file), where, f"key {_short(k)} is not a string")
                out[check_text(k, file, f"{where}.<key>")] = clean(x, depth + 1, f"{where}.{k[:40]}")
            return out
        raise BadInput(str(file), where, f"unsupported value of type {type(v).__name__}")

    return clean(attrs, 1, field)


def check_id(value: Any, file: str, field: str) -> int | None:
    """An optional integer id (instance_id, group_id): None, or an int with |id| <= MAX_ID."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(str(file), field, f"expected an integer, got {_short(value)}")
    if abs(value) > MAX_ID:
        raise BadInput(str(file), field, f"{_short(value)} is out of range (at most {MAX_ID} in magnitude)")
    return value


def check_file_size(path, field: str = "file", limit: int = MAX_ANNOTATION_FILE_BYTES) -> None:
    """BadInput when the file at `path` is larger than `limit` bytes (read nothing of it)."""
    import os

    try:
        size = os.stat(path).st_size
    except OSError:
        return  # the reader's own open reports it
    if size > limit:
        raise BadInput(str(path), field, f"{size / 1e6:.0f} MB; annotation files of more than "
                       f"{limit / 1e6:.0f} MB are refused")


def check_mask_pixels(width: int, height: int, file: str, field: str) -> None:
    if width * height > MASK_PIXEL_BUDGET:
        raise BadInput(str(file), field, f"a {width}x{height} mask exceeds the mask budget of "
                       f"{MASK_PIXEL_BUDGET:,} pixels ({MASK_PIXEL_BUDGET / 1e6:.0f} MB to decode)")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
