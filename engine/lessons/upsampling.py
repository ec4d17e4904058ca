"""Lesson 1, upsampling: unpooling with switches, the transposed convolution as the transpose of
the convolution matrix, 1-D overlap-and-add, and the checkerboard of a stride-2 size-3 kernel.

The numbers of the course material: the 3x3 kernel [[1,4,1],[1,4,3],[3,3,1]] over a 4x4 input
is the 4x16 matrix ``conv_matrix``; its transpose maps 4 values back to 16, which is what
``torch.nn.functional.conv_transpose2d`` computes (checked in the tests).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.lessons.base import Lesson
from engine.lessons.scene import Image, Panel, Rect, Scene, Step, matrix_items

KERNEL = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]], np.float32)
# The unpooling example of the material: a 4x4 map, 2x2 max-pooling, then values to unpool.
POOL_INPUT = np.array([[1, 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]], np.float32)
UNPOOL_VALUES = np.array([[1, 2], [3, 4]], np.float32)


# -- the computations ------------------------------------------------------------------------------
def conv_matrix(kernel: np.ndarray, in_h: int, in_w: int) -> np.ndarray:
    """The matrix C [out_h*out_w, in_h*in_w] of a stride-1, unpadded convolution (cross-correlation,
    as deep-learning libraries compute it): ``conv(x) == (C @ x.ravel()).reshape(out_h, out_w)``."""
    k = np.asarray(kernel, np.float32)
    kh, kw = k.shape
    out_h, out_w = in_h - kh + 1, in_w - kw + 1
    c = np.zeros((out_h * out_w, in_h * in_w), np.float32)
    for oy in range(out_h):
        for ox in range(out_w):
            row = np.zeros((in_h, in_w), np.float32)
            row[oy:oy + kh, ox:ox + kw] = k
            c[oy * out_w + ox] = row.ravel()
    return c


def transposed_conv(y: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """C^T y: a [oh, ow] map back to [oh + kh - 1, ow + kw - 1] through the transposed matrix."""
    kh, kw = np.asarray(kernel).shape
    oh, ow = y.shape
    c = conv_matrix(kernel, oh + kh - 1, ow + kw - 1)
    return (c.T @ np.asarray(y, np.float32).ravel()).reshape(oh + kh - 1, ow + kw - 1)


def overlap_add_1d(values, kernel, stride: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """1-D transposed convolution written as overlap-and-add.

    Returns (copies [N, L], output [L]): copy i is ``values[i] * kernel`` placed at ``i * stride``;
    the output is their sum, L = (N - 1) * stride + len(kernel).
    """
    v = np.asarray(values, np.float32)
    k = np.asarray(kernel, np.float32)
    length = (len(v) - 1) * stride + len(k)
    copies = np.zeros((len(v), length), np.float32)
    for i, a in enumerate(v):
        copies[i, i * stride:i * stride + len(k)] = a * k
    return copies, copies.sum(axis=0)


def max_pool_with_switches(x: np.ndarray, size: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(pooled [H/size, W/size], switches: flat index into x of each maximum), by torch."""
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None, None]
    pooled, idx = F.max_pool2d(t, size, size, return_indices=True)
    return pooled[0, 0].numpy(), idx[0, 0].numpy()


def max_unpool(values: np.ndarray, switches: np.ndarray, out_hw: tuple[int, int], size: int = 2) -> np.ndarray:
    """Put each value back where its maximum came from; zeros elsewhere (torch's max_unpool2d)."""
    v = torch.from_numpy(np.ascontiguousarray(values, np.float32))[None, None]
    idx = torch.from_numpy(np.ascontiguousarray(switches, np.int64))[None, None]
    return F.max_unpool2d(v, idx, size, size, output_size=out_hw)[0, 0].numpy()


def strided_conv(gray: np.ndarray, size: int = 3) -> np.ndarray:
    """Down by 2: a size x size mean filter at stride 2 (padding size // 2)."""
    t = torch.from_numpy(np.ascontiguousarray(gray, np.float32))[None, None]
    w = torch.full((1, 1, size, size), 1.0 / (size * size))
    return F.conv2d(t, w, stride=2, padding=size // 2)[0, 0].numpy()


def transposed_up(small: np.ndarray, size: int = 3) -> np.ndarray:
    """Up by 2 with a stride-2 transposed convolution of a uniform size x size kernel. Output pixels
    receive 1, 2 or 4 kernel taps in a regular pattern: the checkerboard."""
    t = torch.from_numpy(np.ascontiguousarray(small, np.float32))[None, None]
    w = torch.full((1, 1, size, size), 1.0)
    pad = size // 2
    return F.conv_transpose2d(t, w, stride=2, padding=pad, output_padding=1)[0, 0].numpy()


def resize_conv_up(small: np.ndarray, size: int = 3) -> np.ndarray:
    """The fix: nearest-neighbour resize x2, then a size x size mean convolution (every output
    pixel gets the same number of taps, so a flat input stays flat)."""
    t = torch.from_numpy(np.ascontiguousarray(small, np.float32))[None, None]
    up = F.interpolate(t, scale_factor=2, mode="nearest")
    w = torch.full((1, 1, size, size), 1.0 / (size * size))
    return F.conv2d(F.pad(up, [size // 2] * 4, mode="replicate"), w)[0, 0].numpy()


def checker_amplitude(up: np.ndarray, margin: int = 2) -> float:
    """How much a flat input's upsampling varies inside (max - min, borders cut): 0 = no checkerboard."""
    inner = up[margin:-margin, margin:-margin]
    return float(inner.max() - inner.min())


# -- the lesson --------------------------------------------------------------------------------------
def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _to_rgb(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    lo = float(values.min()) if lo is None else lo
    hi = float(values.max()) if hi is None else hi
    g = np.clip((values - lo) / (hi - lo if hi > lo else 1.0) * 255, 0, 255).astype(np.uint8)
    return np.stack([g] * 3, -1)


def _image_panel(title: str, rgb: np.ndarray) -> Panel:
    h, w = rgb.shape[:2]
    return Panel(title, (0, 0, w, h), [Image(rgb, (0, 0, w, h))])


def _matrix_panel(title: str, values: np.ndarray, highlight=None, fmt="{:g}", size=11.0) -> Panel:
    r, c = values.shape
    return Panel(title, (-0.2, -0.2, c + 0.2, r + 0.2), matrix_items(values, fmt=fmt, highlight=highlight, size=size))


class UpsamplingLesson(Lesson):
    key = "upsampling"
    title = "Upsampling: unpooling and transposed convolution"
    topic = "Segmentation"

    def build(self, token) -> None:
        img = self.input.image
        gray = _gray(img)
        h, w = gray.shape
        # a 4x4 patch of the teacher's image: the centre, reduced to 0..9 so the sums stay readable
        small = cv2.resize(gray, (max(8, w // 16), max(8, h // 16)), interpolation=cv2.INTER_AREA)
        cy, cx = small.shape[0] // 2 - 2, small.shape[1] // 2 - 2
        self.patch = np.round(small[cy:cy + 4, cx:cx + 4] / 255.0 * 9).astype(np.float32)
        self.patch_rect = (cx * w / small.shape[1], cy * h / small.shape[0],
                           (cx + 4) * w / small.shape[1], (cy + 4) * h / small.shape[0])
        steps = []
        # 1. the material's pooling example
        pooled, sw = max_pool_with_switches(POOL_INPUT)
        lit = np.zeros(16, bool)
        lit[sw.ravel()] = True
        unpooled = max_unpool(UNPOOL_VALUES, sw, (4, 4))
        steps.append(Step(
            f"Max-pooling 2×2 keeps each block's maximum {pooled.astype(int).tolist()} and remembers where "
            f"it was (the switches, yellow: flat positions {sw.astype(int).ravel().tolist()}).",
            Scene([_matrix_panel("input 4×4 (switches in yellow)", POOL_INPUT, lit.reshape(4, 4)),
                   _matrix_panel("max-pooled 2×2", pooled)])))
        steps.append(Step(
            "Max-unpooling puts the decoder's values [[1,2],[3,4]] back at the switches; every other "
            "cell is 0.",
            Scene([_matrix_panel("switches", POOL_INPUT, lit.reshape(4, 4)),
                   _matrix_panel("values to unpool", UNPOOL_VALUES),
                   _matrix_panel("unpooled 4×4", unpooled, unpooled != 0)])))
        # 2. unpooling on the teacher's image
        g64 = cv2.resize(gray, (64, max(2, round(64 * h / w) // 2 * 2)), interpolation=cv2.INTER_AREA)
        p, s = max_pool_with_switches(g64)
        up = max_unpool(p, s, g64.shape)
        steps.append(Step(
            "The same on your image (grey, 64 px wide): pooling keeps a quarter of the pixels; unpooling "
            "puts them back at their switches and leaves the rest black: sparse, but in the right places.",
            Scene([_image_panel("your image, 64 px wide", _to_rgb(g64, 0, 255)),
                   _image_panel("max-pooled 2×2", _to_rgb(p, 0, 255)),
                   _image_panel("max-unpooled (switches)", _to_rgb(up, 0, 255))])))
        # 3. convolution as a matrix
        c = conv_matrix(KERNEL, 4, 4)
        y = (c @ self.patch.ravel()).reshape(2, 2)
        self.conv_out = y
        steps.append(Step(
            "A 3×3 convolution over a 4×4 input is a 4×16 matrix C: each row is the kernel "
            "[[1,4,1],[1,4,3],[3,3,1]] placed at one output position. y = C·x gives the 2×2 output "
            f"{y.astype(int).tolist()} for the 4×4 patch of your image.",
            Scene([_matrix_panel("C  (4×16)", c, size=10),
                   _matrix_panel("x: 4×4 patch of your image (0..9)", self.patch),
                   _matrix_panel("y = C·x  (2×2)", y)], columns=3)))
        # 4. the transpose
        back = transposed_conv(y, KERNEL)
        steps.append(Step(
            "The transposed convolution multiplies by Cᵀ (16×4): 4 values go back to 16. It restores the "
            "shape, not the input: each output value spreads over a 3×3 footprint.",
            Scene([_matrix_panel("Cᵀ  (16×4)", c.T, size=10),
                   _matrix_panel("y (2×2)", y),
                   _matrix_panel("Cᵀ·y  (4×4)", back)], columns=3)))
        # 5. 1-D overlap and add
        vals = self.patch[0, :2]
        kern = KERNEL[0]
        copies, total = overlap_add_1d(vals, kern, 2)
        steps.append(Step(
            f"In 1-D, stride 2: each input value {vals.astype(int).tolist()} scales the kernel "
            f"{kern.astype(int).tolist()}; copies move 2 cells per input and overlap; the output is their "
            f"sum {total.astype(int).tolist()}.",
            Scene([_matrix_panel("copies  (row i = x[i]·kernel, shifted 2i)", copies, copies != 0),
                   _matrix_panel("sum = transposed convolution", total[None], None)], columns=1)))
        # 6-7. strided vs transposed, checkerboard and fix
        gsmall = cv2.resize(gray, (min(w, 160), max(4, round(min(w, 160) * h / w))), interpolation=cv2.INTER_AREA)
        down = strided_conv(gsmall)
        t_up = transposed_up(down)
        r_up = resize_conv_up(down)
        flat = np.ones((16, 16), np.float32)
        amp_t = checker_amplitude(transposed_up(flat))
        amp_r = checker_amplitude(resize_conv_up(flat))
        self.amplitudes = (amp_t, amp_r)
        taps = transposed_up(flat)[4:12, 4:12]
        steps.append(Step(
            "A strided convolution (3×3, stride 2) halves the size; a transposed one (3×3, stride 2) "
            "doubles it. Output pixels get 1, 2 or 4 kernel taps in turn: a checkerboard over your image.",
            Scene([_image_panel("strided conv ↓2", _to_rgb(down)),
                   _image_panel("transposed conv ↑2 (3×3, stride 2)", _to_rgb(t_up)),
                   _matrix_panel("taps per output pixel (flat input)", taps)])))
        steps.append(Step(
            f"The fix: resize ×2, then convolve. Every pixel gets 9 taps; a flat input stays flat "
            f"(variation {amp_r:g} against {amp_t:g} for the transposed convolution).",
            Scene([_image_panel("transposed conv ↑2: checkerboard", _to_rgb(t_up)),
                   _image_panel("resize ×2 then 3×3 conv: smooth", _to_rgb(r_up))])))
        # where the patch comes from, on every matrix step of the image
        for st in steps[3:5]:
            st.scene.panels.insert(0, Panel("where x comes from", (0, 0, w, h),
                                            [Image(img, (0, 0, w, h), True),
                                             Rect(self.patch_rect, "#ffd600", 3)]))
            st.scene.columns = 2
        self.steps = steps


__all__ = ["KERNEL", "POOL_INPUT", "UNPOOL_VALUES", "UpsamplingLesson", "checker_amplitude", "conv_matrix",
           "max_pool_with_switches", "max_unpool", "overlap_add_1d", "resize_conv_up", "strided_conv",
           "transposed_conv", "transposed_up"]
