"""Lesson 8c, the PatchGAN discriminator of pix2pix (Isola et al. 2017): what one of its outputs sees.

D is a chain of 4 x 4 convolutions (``engine.models.pix2pix.PatchDiscriminator``); each output unit is
one logit "this patch is real" for a window of the image. The window's side is the receptive field
(``pix2pix.receptive_field``: 70 px for three stride-2 layers), neighbouring windows are the product of
the strides apart (8 px), so the windows overlap heavily and every pixel is judged by many units. The
per-layer geometry is the usual arithmetic: ``size += (k - 1) * jump``, ``start -= p * jump``,
``jump *= s`` and ``out = (n + 2p - k) // s + 1``.

With a pix2pix (or colorization) checkpoint of the project, the last step runs its D on the image:
P(real) per patch for the pair (input, the photo) where the photo is the real target, and for
(input, G's output); without one the lesson shows how many windows judge each pixel instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.jobs import Progress
from engine.lessons.base import Lesson
from engine.lessons.scene import Dot, Image, Line, Panel, Rect, Scene, Step, Text, blend, colormap

N_LAYERS = 3  # pix2pix's default: 70 x 70 patches
MAX_WINDOWS = 300  # above this many output units only a sparse, evenly spread subset of windows is drawn
LAYER_COLOURS = ("#40c4ff", "#69f0ae", "#b388ff", "#ff9100", "#ffd600", "#ff5252", "#ffffff")
REAL_FROM_PHOTO = ("gray2color", "colorize", "edges2photo")  # kinds whose target is the photo itself


@dataclass
class LayerGeometry:
    """After one convolution of D: ``size`` (pixels one unit sees, one side), ``jump`` (pixels between
    neighbouring units), ``start`` (first pixel of unit 0, negative in the padding), ``out_hw``."""

    name: str
    kernel: int
    stride: int
    size: int
    jump: int
    start: int
    out_hw: tuple[int, int]

    def window(self, row: int, col: int) -> tuple[float, float, float, float]:
        """The pixels unit (row, col) sees (xyxy, x2/y2 exclusive; may reach into the padding)."""
        x1, y1 = self.start + col * self.jump, self.start + row * self.jump
        return float(x1), float(y1), float(x1 + self.size), float(y1 + self.size)

    def centre(self, row: int, col: int) -> tuple[float, float]:
        x1, y1, x2, y2 = self.window(row, col)
        return (x1 + x2) / 2, (y1 + y2) / 2

    def unit_at(self, x: float, y: float) -> tuple[int, int]:
        """The unit whose window is centred nearest to (x, y)."""
        col = round((x - self.start - self.size / 2) / self.jump)
        row = round((y - self.start - self.size / 2) / self.jump)
        return int(np.clip(row, 0, self.out_hw[0] - 1)), int(np.clip(col, 0, self.out_hw[1] - 1))


def discriminator(n_layers: int = N_LAYERS, in_ch: int = 6, ndf: int = 64):
    from engine.models.pix2pix import PatchDiscriminator

    return PatchDiscriminator(in_ch, ndf, n_layers)


def layer_geometry(D, image_hw: tuple[int, int]) -> list[LayerGeometry]:
    """One entry per convolution of a PatchDiscriminator for an input of ``image_hw``; the field
    size is pix2pix's own ``receptive_field`` of the layers up to that one."""
    from torch import nn

    from engine.models.pix2pix import receptive_field

    layers = list(D.net)
    out = []
    jump, start = 1, 0
    h, w = image_hw
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    for n, i in enumerate(convs):
        conv = layers[i]
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        start -= p * jump
        size = receptive_field(nn.Sequential(*layers[:i + 1]))
        jump *= s
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        name = "logit" if n == len(convs) - 1 else f"conv {n + 1}"
        out.append(LayerGeometry(name, k, s, size, jump, start, (h, w)))
    return out


def coverage(g: LayerGeometry, image_hw: tuple[int, int]) -> np.ndarray:
    """int [H, W]: how many output units' windows contain each pixel."""
    h, w = image_hw
    rows, cols = g.out_hw
    def along(n: int, units: int) -> np.ndarray:
        count = np.zeros(n + 1, np.int64)
        for u in range(units):
            a = g.start + u * g.jump
            count[max(a, 0)] += 1
            count[min(max(a + g.size, 0), n)] -= 1
        return np.cumsum(count)[:n]
    return np.outer(along(h, rows), along(w, cols)).astype(np.int64)


def sparse_units(count: int, step: int) -> list[int]:
    """Every ``step``-th unit, always with the last, so the drawn windows reach both borders."""
    picks = list(range(0, count, max(step, 1)))
    if picks[-1] != count - 1:
        picks.append(count - 1)
    return picks


def patch_probabilities(model_path: str, rgb: np.ndarray) -> dict:
    """Run a pix2pix checkpoint's D on the image: {"fake": P(real) [H', W'] of (input, G(input)),
    "real": of (input, photo) or None, "output": G's picture, "input": the input picture, "kind"}."""
    import torch
    import torch.nn.functional as F

    from engine.data.pairs import decode_output, derive_input, encode_pair
    from engine.infer.pix2pix_predictor import Pix2PixPredictor

    pred = Pix2PixPredictor.from_checkpoint(model_path, "cpu")
    if pred.needs_labels:
        raise ValueError("this checkpoint translates label masks to photos; the lesson has no masks to give it")
    kind = pred.kind
    real_known = kind in REAL_FROM_PHOTO
    a = derive_input(kind, rgb, pred.config) if real_known else pred.input_for(rgb)
    x, b = encode_pair(kind, a, rgb if real_known else None)
    h, w = x.shape[1:]
    ph, pw = -h % pred.multiple, -w % pred.multiple
    with torch.no_grad():
        batch = F.pad(x[None], (0, pw, 0, ph), mode="replicate")
        fake = pred.model.G(batch)[:, :, :h, :w]
        p_fake = torch.sigmoid(pred.model.D(torch.cat([x[None], fake], 1)))[0, 0].double().numpy()
        p_real = None
        if b is not None:
            p_real = torch.sigmoid(pred.model.D(torch.cat([x[None], b[None]], 1)))[0, 0].double().numpy()
        picture = decode_output(kind, x, fake[0])
    return {"fake": p_fake, "real": p_real, "output": picture, "input": a, "kind": kind,
            "n_layers": int(pred.config["n_layers"])}


class PatchGANLesson(Lesson):
    key = "patchgan"
    title = "PatchGAN receptive field"
    topic = "Style and image-to-image"
    needs = "pix2pix"
    needs_optional = True

    def build(self, token):
        img = self.input.image
        h, w = img.shape[:2]
        self.patches = None
        n_layers = N_LAYERS
        if self.model_path:
            yield Progress(0, 2, "running the checkpoint's discriminator")
            try:
                self.patches = patch_probabilities(self.model_path, img)
                n_layers = self.patches["n_layers"]
            except Exception as exc:  # noqa: BLE001 - a wrong or foreign file is said, the geometry stays
                self.notes.append(f"pix2pix checkpoint not used: {exc}")
        else:
            self.notes.append("No pix2pix checkpoint in this project: the geometry only.")
        token.raise_if_cancelled()
        self.layers = layer_geometry(discriminator(n_layers), (h, w))
        self.sizes_by_depth = {n: layer_geometry(discriminator(n), (h, w))[-1].size for n in range(0, 6)}
        last = self.layers[-1]
        self.unit = last.unit_at(w / 2, h / 2)
        self.coverage = coverage(last, (h, w))
        self.rebuild()

    @property
    def patch(self) -> LayerGeometry:
        return self.layers[-1]

    def _unit_in(self, g: LayerGeometry) -> tuple[int, int]:
        """The unit of layer ``g`` under the selected output unit's centre."""
        return g.unit_at(*self.patch.centre(*self.unit))

    def rebuild(self) -> None:
        img = self.input.image
        h, w = img.shape[:2]
        world = (0, 0, w, h)
        dim = blend(img, np.zeros_like(img), 0.35)
        steps = []
        pad = self.patch.size / 2 + 2
        view = (-pad, -pad, w + pad, h + pad)  # windows reach into the zero padding around the image
        sizes = [g.size for g in self.layers]
        for i, g in enumerate(self.layers):
            items = [Rect((0, 0, w, h), "#5f6368", 1, dashed=True), Image(dim, world, True)]
            for j, prev in enumerate(self.layers[:i + 1]):
                r, c = self._unit_in(prev)
                last = j == i
                items.append(Rect(prev.window(r, c), LAYER_COLOURS[j % len(LAYER_COLOURS)], 3 if last else 1.5,
                                  dashed=not last, label=f"{prev.name}: {prev.size}×{prev.size}" if last else ""))
            plot = Panel("field size after each convolution", (-0.5, 0, len(sizes) - 0.5, max(sizes) * 1.15),
                         keep_aspect=False, y_up=True, axes=True, ylabel="pixels",
                         xticks=[(k, gg.name) for k, gg in enumerate(self.layers)])
            plot.add(Line([(k, s) for k, s in enumerate(sizes[:i + 1])], "#ffd600", 3))
            for k in range(i + 1):
                plot.add(Dot(k, sizes[k], LAYER_COLOURS[k % len(LAYER_COLOURS)], 7),
                         Text(k, sizes[k] + max(sizes) * 0.03, str(sizes[k]), "#ffffff", 12, "bc", bold=True))
            grow = f"+ ({g.kernel} − 1) × {g.jump // g.stride} px" if i else f"{g.kernel} px"
            if i == len(self.layers) - 1:
                other = ", ".join(f"{n}: {s}" for n, s in self.sizes_by_depth.items() if n != len(self.layers) - 2)
                grow += f"; with other numbers of stride-2 layers ({other} px)"
            steps.append(Step(
                f"{g.name} of D (4×4, stride {g.stride}): a unit sees {g.size}×{g.size} pixels ({grow}); units are "
                f"{g.jump} px apart, the map is {g.out_hw[0]}×{g.out_hw[1]}. Click the image to move the unit.",
                Scene([Panel(f"{g.name}: {g.size}×{g.size}", view, items), plot], columns=2)))
        steps.append(self._grid_step(view, dim, world))
        steps.append(self._map_step(view, world))
        self.steps = steps

    def _grid_step(self, view, dim, world) -> Step:
        g = self.patch
        rows, cols = g.out_hw
        step = 1 if rows * cols <= MAX_WINDOWS else max(1, g.size // g.jump)
        items = [Rect((0, 0, world[2], world[3]), "#5f6368", 1, dashed=True), Image(dim, world, True)]
        for r in range(rows):
            for c in range(cols):
                items.append(Dot(*g.centre(r, c), "#40c4ff", 1.5))
        for r in sparse_units(rows, step):
            for c in sparse_units(cols, step):
                items.append(Rect(g.window(r, c), "#40c4ff", 1))
        r, c = self.unit
        items.append(Rect(g.window(r, c), "#ffd600", 3.5, label=f"unit ({r}, {c})"))
        items.append(Dot(*g.centre(r, c), "#ff5252", 5))
        shown = "every unit's window" if step == 1 else f"every {step}th window in each direction (they would tile)"
        return Step(
            f"The output is a {rows}×{cols} grid of logits, one per {g.size}×{g.size} patch, {g.jump} px apart: "
            f"{rows * cols} overlapping judgements of \"real?\", averaged by the loss. Drawn: {shown}, with every "
            "unit's centre. Click to pick a unit.",
            Scene([Panel(f"{rows}×{cols} patches of {g.size}×{g.size}", view, items)],
                  legend=[("#40c4ff", "patch windows / centres"), ("#ffd600", "the selected unit's patch")]))

    def _map_step(self, view, world) -> Step:
        g = self.patch
        img = self.input.image
        rows, cols = g.out_hw
        r, c = self.unit
        x0, y0 = g.centre(0, 0)
        cells = (x0 - g.jump / 2, y0 - g.jump / 2, x0 + (cols - 0.5) * g.jump, y0 + (rows - 0.5) * g.jump)
        sel = Rect(g.window(r, c), "#ffd600", 3)
        if self.patches is None:
            cov = self.coverage
            panels = [Panel("how many patches judge each pixel", view,
                            [Image(blend(img, colormap(cov.astype(float), 0, cov.max()), 0.7), world, True), sel,
                             Text(w_mid(world), world[3] + 2, f"max {cov.max()} patches, min {cov.min()} (corners)",
                                  "#ffffff", 12, "tc", plate=True)])]
            why = self.notes[-1] if self.notes else "No pix2pix checkpoint."
            return Step(f"{why} Train pix2pix or colorization on this project to see D's verdict per patch here. "
                        f"Meanwhile: every interior pixel is inside up to {cov.max()} patches, so D's verdicts are "
                        "not independent; the corners are judged by few.", Scene(panels))
        p = self.patches
        panels = []
        if p["real"] is not None:
            panels.append(self._prob_panel("D on (input, your photo)", p["real"], img, view, world, cells, sel))
        panels.append(self._prob_panel("D on (input, G's output)", p["fake"], p["output"], view, world, cells, sel))
        v = p["fake"][r, c]
        mean = f"mean P(real) {p['fake'].mean():.2f} on G's output"
        if p["real"] is not None:
            mean += f", {p['real'].mean():.2f} on your photo"
        return Step(f"The {p['kind']} checkpoint's D, one P(real) per {g.size}×{g.size} patch: {mean}. The selected "
                    f"patch: {v:.2f} on G's output. Red: looks real to D; blue: looks generated.",
                    Scene(panels, columns=len(panels), legend=[("#ff4040", "P(real) near 1"),
                                                               ("#4040ff", "P(real) near 0")]))

    @staticmethod
    def _prob_panel(title, prob, picture, view, world, cells, sel) -> Panel:
        heat = colormap(prob - 0.5, -0.5, 0.5, diverging=True)
        glow = np.dstack([heat, np.full(prob.shape, 150, np.uint8)])
        return Panel(title, view, [Image(picture, world, True), Image(glow, cells), sel])

    def press(self, step: int, panel: int, x: float, y: float) -> bool:
        if step >= len(self.steps) or (step == len(self.steps) - 1 and self.patches is None and panel != 0):
            return False
        self.unit = self.patch.unit_at(x, y)
        self.rebuild()
        return True


def w_mid(world) -> float:
    return (world[0] + world[2]) / 2
