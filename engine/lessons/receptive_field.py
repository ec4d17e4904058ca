"""Lesson 6, receptive field: theoretical (layer arithmetic) and effective (gradient) of a unit of
the shipped EfficientNet-Lite0.

Theoretical: through a chain of convolutions with kernel k, stride s and left padding p, a unit
sees ``size = size + (k - 1) * jump`` input pixels, ``jump = jump * s`` and
``start = start - p * jump`` (for unit 0; unit i starts ``i * jump`` further). Residual
branches are identities and never widen this. TF "same" padding depends on the input size, so
the layers are listed by running the network once with hooks.

Effective (Luo et al. 2016): the magnitude of the gradient of the unit with respect to the input
pixels. It is non-zero only inside the theoretical field, and with the trained weights it is
concentrated near its centre. With every weight positive and every activation in the linear
range (``probe_model``), the gradient is positive at exactly the theoretical field: the tests
check the arithmetic that way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.jobs import Progress
from engine.lessons.base import Lesson
from engine.lessons.scene import Dot, Image, Line, Panel, Rect, Scene, Step, Text, blend, colormap


@dataclass
class Field:
    """The theoretical receptive field after one layer, per axis (y, x): ``jump`` (input pixels
    between neighbouring units), ``size`` (pixels seen), ``start`` (first pixel of unit 0; negative
    means padding); ``out_hw`` the layer's map size."""

    name: str
    jump: tuple[int, int]
    size: tuple[int, int]
    start: tuple[int, int]
    out_hw: tuple[int, int]

    def box(self, row: int, col: int, image_hw: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """Pixels (xyxy, x2/y2 exclusive) unit (row, col) sees, cut to the image when given."""
        x1 = self.start[1] + col * self.jump[1]
        y1 = self.start[0] + row * self.jump[0]
        x2, y2 = x1 + self.size[1], y1 + self.size[0]
        if image_hw is not None:
            x1, y1 = max(x1, 0), max(y1, 0)
            x2, y2 = min(x2, image_hw[1]), min(y2, image_hw[0])
        return int(x1), int(y1), int(x2), int(y2)

    def unit_at(self, x: float, y: float) -> tuple[int, int]:
        """The unit (row, col) whose field is centred nearest to pixel (x, y)."""
        col = round((x - self.start[1] - (self.size[1] - 1) / 2) / self.jump[1])
        row = round((y - self.start[0] - (self.size[0] - 1) / 2) / self.jump[0])
        return int(np.clip(row, 0, self.out_hw[0] - 1)), int(np.clip(col, 0, self.out_hw[1] - 1))


def layer_outputs(model) -> list[tuple[str, torch.nn.Module]]:
    """The units one can click: the stem and the output of every block (names "stem", "block 1"...
    with the feature level added where a stage ends, e.g. "block 3 (c2)")."""
    out = [("stem", model._bn0)]
    ends = model._stage_ends
    for i, block in enumerate(model._blocks):
        name = f"block {i + 1}" + (f" ({ends[i]})" if i in ends else "")
        out.append((name, block))
    return out


def theoretical_fields(model, image_hw: tuple[int, int]) -> list[Field]:
    """One Field per entry of ``layer_outputs`` for an input of ``image_hw``."""
    from engine.models.backbones import Conv2dSame

    convs: list[tuple[torch.nn.Module, tuple[int, int]]] = []
    def before(mod, args) -> None:
        convs.append((mod, tuple(args[0].shape[-2:])))

    hooks = [m.register_forward_pre_hook(before) for m in model.modules() if isinstance(m, Conv2dSame)]
    outputs: dict[int, tuple[int, int]] = {}
    marks: list[int] = []  # number of convs run when each clickable layer produced its output
    def seen(mod, _args, out) -> None:  # a forward hook must return None or it replaces the output
        outputs[id(mod)] = tuple(out.shape[-2:])
        marks.append(len(convs))

    for _, mod in layer_outputs(model):
        hooks.append(mod.register_forward_hook(seen))
    try:
        with torch.no_grad():
            dtype = next(model.parameters()).dtype
            model.features(torch.zeros(1, 3, *image_hw, dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
    fields = []
    names = [n for n, _ in layer_outputs(model)]
    mods = [m for _, m in layer_outputs(model)]
    jump, size, start = [1, 1], [1, 1], [0, 0]
    done = 0
    for name, mod, mark in zip(names, mods, marks):
        for conv, in_hw in convs[done:mark]:
            for axis in (0, 1):
                k, s = conv.kernel_size[axis], conv.stride[axis]
                pad, _ = conv._pad(in_hw[axis], k, s, conv.dilation[axis])
                start[axis] -= pad * jump[axis]
                size[axis] += (k - 1) * jump[axis]
                jump[axis] *= s
        done = mark
        fields.append(Field(name, tuple(jump), tuple(size), tuple(start), outputs[id(mod)]))
    return fields


class _Reached(Exception):
    """Raised by a hook once the wanted layer has run."""


def gradient_map(model, x: torch.Tensor, layer: str, row: int, col: int) -> np.ndarray:
    """|d unit / d input| summed over colour channels: float [H, W]. The unit is the sum of all
    channels of ``layer`` (a name of ``layer_outputs``) at (row, col); ``x`` [1, 3, H, W]."""
    mod = dict(layer_outputs(model))[layer]
    store = {}
    def keep(_mod, _args, out) -> None:
        store["out"] = out
        raise _Reached  # the layers after this one do not matter: stop the forward pass here

    handle = mod.register_forward_hook(keep)
    x = x.detach().clone().requires_grad_(True)
    try:
        model.features(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    store["out"][0, :, row, col].sum().backward()
    return x.grad[0].abs().sum(0).detach().double().numpy()


def probe_model(dtype: torch.dtype = torch.float32):
    """Lite0's architecture with every weight 1 / fan-in (projections halved so residual sums stay
    small) and BatchNorm as identity, in float64: on a small positive input every activation is in
    ReLU6's linear range, so the gradient is positive at exactly the theoretical field."""
    from engine.models.backbones import EfficientNetLite0

    model = EfficientNetLite0().to(dtype).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.fill_((0.5 if "_project" in name else 1.0) / fan_in)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return model


SHOWN_LAYERS = ("stem", "block 3 (c2)", "block 5 (c3)", "block 11 (c4)", "block 16 (c5)")
CHOSEN_LAYER = "block 8"  # the "any layer" step starts here, between c3 and c4


class ReceptiveFieldLesson(Lesson):
    key = "receptive_field"
    title = "Receptive field: theoretical and effective"
    topic = "Classification"
    needs = "lite0"
    needs_optional = False

    def build(self, token):
        from engine.models.backbones import efficientnet_lite0, preprocess

        self.model = efficientnet_lite0(pretrained=True)
        img = self.input.image
        h, w = img.shape[:2]
        self.x = preprocess(torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.0)
        self.fields = {f.name: f for f in theoretical_fields(self.model, (h, w))}
        if len(self.input.boxes):
            b = self.input.boxes[0]
            self.point = (float(b[0] + b[2]) / 2, float(b[1] + b[3]) / 2)
        else:
            self.point = (w / 2, h / 2)
        self.effective: dict[tuple[str, int, int], np.ndarray] = {}
        self.chosen = CHOSEN_LAYER  # the layer of the "any layer" step, picked on the plot
        for i, layer in enumerate(self._layers()):
            yield Progress(i, len(SHOWN_LAYERS) + 1, f"gradient of a {layer} unit")
            token.raise_if_cancelled()
            self._effective(layer)
        self.rebuild()

    def _effective(self, layer: str) -> np.ndarray:
        unit = self.fields[layer].unit_at(*self.point)
        key = (layer, *unit)
        if key not in self.effective:
            self.effective[key] = gradient_map(self.model, self.x, layer, *unit)
        return self.effective[key]

    def _layers(self) -> tuple[str, ...]:
        return SHOWN_LAYERS + (self.chosen,)

    def rebuild(self) -> None:
        img = self.input.image
        h, w = img.shape[:2]
        world = (0, 0, w, h)
        steps = []
        for layer in self._layers():
            f = self.fields[layer]
            row, col = f.unit_at(*self.point)
            key = (layer, row, col)
            box = f.box(row, col, (h, w))
            items = []
            grad = self.effective.get(key)
            if grad is not None:
                g = np.sqrt(grad / max(float(grad.max()), 1e-30))  # square root: the tails stay visible
                # the gradient as a glow over the darkened image: transparent where it is zero
                glow = np.dstack([colormap(g, 0, 1), (np.clip(g * 2.5, 0, 1) * 235).astype(np.uint8)])
                items += [Image(blend(img, np.zeros_like(img), 0.45), world), Image(glow, world)]
                ys, xs = np.nonzero(grad > 0.05 * grad.max())
                spread = (int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)) if len(xs) else (0, 0)
            else:
                items.append(Image(img, world, True))
                spread = None
            unit_px = (f.start[1] + col * f.jump[1] + f.size[1] / 2, f.start[0] + row * f.jump[0] + f.size[0] / 2)
            items += [Rect(box, "#ffd600", 3, label=f"theoretical {f.size[1]}×{f.size[0]}"),
                      Rect((unit_px[0] - f.jump[1] / 2, unit_px[1] - f.jump[0] / 2,
                            unit_px[0] + f.jump[1] / 2, unit_px[1] + f.jump[0] / 2), "#ff5252", 2.5)]
            eff = (f"; effective (gradient > 5 % of its peak) {spread[0]}×{spread[1]} px" if spread else
                   "; click to compute the effective field")
            which = "the layer picked on the next step's plot: " if len(steps) == len(SHOWN_LAYERS) else ""
            steps.append(Step(
                f"A unit of {which}{layer} (stride {f.jump[0]}, map {f.out_hw[0]}×{f.out_hw[1]}): it sees "
                f"{f.size[1]}×{f.size[0]} pixels in theory (yellow){eff}. Click the image to pick another unit.",
                Scene([Panel(f"{layer}: unit ({row}, {col})", world, items)],
                      legend=[("#ffd600", "theoretical field"), ("#ff5252", "the unit's cell"),
                              ("#fde725", "gradient magnitude (effective field)")])))
        names = list(self.fields)
        sizes = [self.fields[n].size[1] for n in names]
        panel = Panel("theoretical field size (pixels) after each layer", (-0.5, 0, len(names) - 0.5, max(sizes) * 1.1),
                      keep_aspect=False, y_up=True, axes=True, xlabel="layer (0 = stem, then blocks 1..16)",
                      ylabel="pixels")
        panel.add(Line([(i, s) for i, s in enumerate(sizes)], "#ffd600", 3))
        pick = names.index(self.chosen)
        panel.add(Dot(pick, sizes[pick], "#ff5252", 9, f"picked: {self.chosen}"))
        for i, n in enumerate(names):
            if "(" in n or n == "stem":
                anchor = "bl" if i < len(names) / 2 else "br"  # labels stay inside the plot
                panel.add(Text(i + (0.2 if anchor == "bl" else -0.2), sizes[i], f"{n}: {sizes[i]}", "#ffffff", 11,
                               anchor, plate=True))
        steps.append(Step(f"Layer by layer: the field grows by (k − 1) × jump at every convolution and the jump "
                          f"doubles at every stride 2; the last block sees {sizes[-1]} pixels, more than the "
                          f"{max(h, w)}-pixel image. Click a layer on the curve to see it (step back).",
                          Scene([panel])))
        self.steps = steps

    def press(self, step: int, panel: int, x: float, y: float):
        layers = self._layers()
        if step == len(layers):  # the plot: pick any layer for the step before it
            names = list(self.fields)
            self.chosen = names[int(np.clip(round(x), 0, len(names) - 1))]
            self.pending_layer = self.chosen
            self.rebuild()
            return "background"
        if step > len(layers):
            return False
        self.point = (float(x), float(y))
        self.pending_layer = layers[step]
        self.rebuild()
        return "background"  # the gradient takes a backward pass: computed off the GUI thread

    def background(self, token):
        yield Progress(0, 1, "computing the effective receptive field")
        self._effective(self.pending_layer)
        self.rebuild()
        return self
