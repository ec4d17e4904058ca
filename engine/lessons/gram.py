"""Lesson 8b, the Gram matrix of a layer (Gatys et al. 2016), on the style family's feature network.

G = F Fᵀ / M for the layer's feature maps F [N channels, M positions]: which channels fire
together, summed over every position. It keeps texture and colour and forgets where things are:
cutting the image into tiles and shuffling them changes the picture's content features
completely but its early layers' Gram matrices hardly at all; the last step measures both.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.jobs import Progress
from engine.lessons.base import Lesson
from engine.lessons.scene import Image, Panel, Rect, Scene, Step, Text, colormap

SHOWN_CHANNELS = 24  # the most active channels: a readable corner of the N x N matrix
TILE = 32  # pixels of the tiles the shuffled image is cut into


def normalised_gram(features: torch.Tensor) -> np.ndarray:
    """F Fᵀ / M of one image's maps [N, H, W] (M = H W positions) -> float [N, N]."""
    from engine.models.style import gram_matrix

    n, h, w = features.shape
    return (gram_matrix(features) / float(h * w)).double().numpy()


def shuffle_tiles(image: np.ndarray, tile: int = TILE, seed: int = 0) -> np.ndarray:
    """The image cut into tile x tile squares put back in a random order (borders left as they are)."""
    h, w = image.shape[:2]
    rows, cols = h // tile, w // tile
    out = image.copy()
    tiles = [image[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] for r in range(rows) for c in range(cols)]
    order = np.random.default_rng(seed).permutation(len(tiles))
    for k, i in enumerate(order):
        r, c = divmod(k, cols)
        out[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = tiles[i]
    return out


def relative_change(a: np.ndarray, b: np.ndarray) -> float:
    """|a - b| / |a| (Frobenius)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-12))


class GramLesson(Lesson):
    key = "gram_matrix"
    title = "Gram matrix of a layer"
    topic = "Style and image-to-image"
    needs = "lite0"
    needs_optional = False

    def build(self, token):
        from engine.models.style import DEFAULT_LAYERS, Lite0Features

        # the network's own style layers: "rgb" (the pixels) is a colour term, not a feature map
        layers = tuple(n for n in DEFAULT_LAYERS["lite0"]["style"] if n != "rgb")
        net = Lite0Features(pretrained=True)
        img = self.input.image
        h, w = img.shape[:2]
        world = (0, 0, w, h)
        x = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.0
        shuffled = shuffle_tiles(img)
        xs = torch.from_numpy(shuffled).permute(2, 0, 1).float()[None] / 255.0
        yield Progress(0, 2, "features of your image")
        with torch.no_grad():
            feats = net(x, layers)
            feats_shuffled = net(xs, layers)
        steps = []
        self.changes: dict[str, tuple[float, float]] = {}
        for layer in layers:
            f = feats[layer][0]
            n, fh, fw = f.shape
            gram = normalised_gram(f)
            top = np.argsort(-np.diag(gram))[:SHOWN_CHANNELS]
            corner = gram[np.ix_(top, top)]
            maps = f[torch.from_numpy(top[:4].copy())].numpy()
            cm = [colormap(m) for m in maps]
            tiles = np.concatenate([np.concatenate(cm[:2], axis=1), np.concatenate(cm[2:4], axis=1)], axis=0)
            gram_s = normalised_gram(feats_shuffled[layer][0])
            content = relative_change(f.numpy().ravel(), feats_shuffled[layer][0].numpy().ravel())
            self.changes[layer] = (relative_change(gram, gram_s), content)
            k = len(top)
            steps.append(Step(
                f"Layer {layer}: {n} channels × {fh}×{fw} positions. G = F Fᵀ / M is {n}×{n}: entry (i, j) is how much "
                f"channels i and j fire together, summed over all positions; shown: the {k} most active channels.",
                Scene([Panel("your image", world, [Image(img, world, True)]),
                       Panel(f"4 of {n} maps of {layer}", (0, 0, tiles.shape[1], tiles.shape[0]),
                             [Image(tiles, (0, 0, tiles.shape[1], tiles.shape[0]))]),
                       Panel(f"Gram matrix, {k} of {n} channels", (0, 0, k, k),
                             [Image(colormap(np.sqrt(np.maximum(corner, 0))), (0, 0, k, k))])], columns=3)))
        yield Progress(1, 2, "the shuffled image")
        first = layers[0]
        g_change, c_change = self.changes[first]
        names = list(self.changes)
        bars = Panel("change after shuffling (%)", (-0.6, 0, len(names) - 0.4, 110), keep_aspect=False, y_up=True,
                     axes=True, ylabel="%", xlabel="layer (e = expand)",
                     xticks=[(i, n.replace("expand", "e")) for i, n in enumerate(names)])
        for i, name in enumerate(names):
            g, c = self.changes[name]
            bars.add(Rect((i - 0.38, 0, i - 0.02, 100 * c), "#40c4ff", 0, fill="#40c4ff"),
                     Rect((i + 0.02, 0, i + 0.38, 100 * g), "#ffd600", 0, fill="#ffd600"),
                     Text(i + 0.2, 100 * g + 2, f"{100 * g:.0f}", "#ffd600", 11, "bc", bold=True))
        steps.append(Step(
            f"Shuffle {TILE}-px tiles of your image: the feature maps of {first} change by {100 * c_change:.0f} %, its "
            f"Gram matrix by {100 * g_change:.0f} %. The Gram matrix keeps texture and colour, not where things are: "
            "what style transfer matches.",
            Scene([Panel("your image", world, [Image(img, world, True)]),
                   Panel("tiles shuffled", world, [Image(shuffled, world, True)]), bars], columns=3,
                  legend=[("#40c4ff", "feature maps"), ("#ffd600", "Gram matrix")])))
        self.steps = steps
