"""Selective search (Uijlings et al. 2013), written here: a greedy hierarchical merge of regions.

OpenCV's implementation lives in opencv-contrib, which cannot be installed beside the
opencv-python-headless wheel the product uses (both provide the ``cv2`` module). So: initial
regions from Felzenszwalb and Huttenlocher's graph segmentation (scikit-image), then, as in the
paper, the two most similar neighbouring regions are merged again and again until one region is
left; every region ever formed is a proposal (its bounding box). Similarity is the sum of the
paper's four measures, each in [0, 1]: colour histogram intersection, texture (gradient
orientation histogram) intersection, size (small regions merge first) and fill (regions whose
union fills their joint bounding box merge first).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import cv2
import numpy as np

COLOUR_BINS = 25
TEXTURE_BINS = 10
ORIENTATIONS = 8


@dataclass
class Region:
    size: int
    box: tuple[int, int, int, int]  # xyxy, x2/y2 exclusive
    colour: np.ndarray  # L1-normalised histogram [3 * COLOUR_BINS]
    texture: np.ndarray  # L1-normalised histogram [3 * ORIENTATIONS * TEXTURE_BINS]


def initial_regions(image: np.ndarray, scale: float = 200.0, sigma: float = 0.8, min_size: int = 50) -> np.ndarray:
    """int32 [H, W] labels 0..K-1 by Felzenszwalb's graph-based segmentation."""
    from skimage.segmentation import felzenszwalb

    return felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size).astype(np.int32)


def _histograms(image: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-region colour [k, 3*COLOUR_BINS] and texture [k, 3*ORIENTATIONS*TEXTURE_BINS] histograms,
    each row L1-normalised."""
    flat = labels.ravel()
    colour = np.zeros((k, 3 * COLOUR_BINS), np.float64)
    texture = np.zeros((k, 3 * ORIENTATIONS * TEXTURE_BINS), np.float64)
    for ch in range(3):
        plane = image[:, :, ch].astype(np.float32)
        bins = np.minimum((plane.ravel() / 256.0 * COLOUR_BINS).astype(int), COLOUR_BINS - 1)
        np.add.at(colour, (flat, ch * COLOUR_BINS + bins), 1)
        gx = cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=3)
        mag = np.hypot(gx, gy).ravel()
        ori = ((np.arctan2(gy, gx).ravel() + np.pi) / (2 * np.pi) * ORIENTATIONS).astype(int) % ORIENTATIONS
        mbin = np.minimum((mag / (mag.max() + 1e-9) * TEXTURE_BINS).astype(int), TEXTURE_BINS - 1)
        np.add.at(texture, (flat, (ch * ORIENTATIONS + ori) * TEXTURE_BINS + mbin), 1)
    colour /= np.maximum(colour.sum(1, keepdims=True), 1)
    texture /= np.maximum(texture.sum(1, keepdims=True), 1)
    return colour, texture


def _neighbours(labels: np.ndarray) -> set[tuple[int, int]]:
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        diff = a != b
        lo = np.minimum(a[diff], b[diff])
        hi = np.maximum(a[diff], b[diff])
        pairs.update(zip(lo.tolist(), hi.tolist()))
    return pairs


def similarity(a: Region, b: Region, image_size: int) -> float:
    """Colour + texture + size + fill similarity of two regions, in [0, 4]."""
    colour = float(np.minimum(a.colour, b.colour).sum())
    texture = float(np.minimum(a.texture, b.texture).sum())
    size = 1.0 - (a.size + b.size) / image_size
    x1, y1 = min(a.box[0], b.box[0]), min(a.box[1], b.box[1])
    x2, y2 = max(a.box[2], b.box[2]), max(a.box[3], b.box[3])
    fill = 1.0 - ((x2 - x1) * (y2 - y1) - a.size - b.size) / image_size
    return colour + texture + size + fill


def merge(a: Region, b: Region) -> Region:
    n = a.size + b.size
    return Region(n, (min(a.box[0], b.box[0]), min(a.box[1], b.box[1]), max(a.box[2], b.box[2]),
                      max(a.box[3], b.box[3])),
                  (a.colour * a.size + b.colour * b.size) / n, (a.texture * a.size + b.texture * b.size) / n)


@dataclass
class Hierarchy:
    """What selective search built: ``labels`` the initial regions; ``boxes`` float [2K-1, 4] xyxy
    of every region in the order it was formed (K initial ones first); ``merges`` [(i, j, new)]."""

    labels: np.ndarray
    boxes: np.ndarray
    merges: list[tuple[int, int, int]]

    @property
    def initial_count(self) -> int:
        return int(self.labels.max()) + 1


def selective_search(image: np.ndarray, scale: float = 200.0, sigma: float = 0.8, min_size: int = 50) -> Hierarchy:
    """Greedy hierarchical grouping on uint8 RGB ``image`` [H, W, 3]."""
    image = np.ascontiguousarray(image[:, :, :3])
    labels = initial_regions(image, scale, sigma, min_size)
    k = int(labels.max()) + 1
    h, w = labels.shape
    colour, texture = _histograms(image, labels, k)
    sizes = np.bincount(labels.ravel(), minlength=k)
    ys, xs = np.mgrid[0:h, 0:w]
    flat = labels.ravel()
    x1 = np.full(k, w)
    y1 = np.full(k, h)
    x2 = np.zeros(k, int)
    y2 = np.zeros(k, int)
    np.minimum.at(x1, flat, xs.ravel())
    np.minimum.at(y1, flat, ys.ravel())
    np.maximum.at(x2, flat, xs.ravel() + 1)
    np.maximum.at(y2, flat, ys.ravel() + 1)
    regions: dict[int, Region] = {i: Region(int(sizes[i]), (int(x1[i]), int(y1[i]), int(x2[i]), int(y2[i])),
                                            colour[i], texture[i]) for i in range(k)}
    boxes = [regions[i].box for i in range(k)]
    adjacent: dict[int, set[int]] = {i: set() for i in range(k)}
    heap: list[tuple[float, int, int]] = []
    for a, b in _neighbours(labels):
        adjacent[a].add(b)
        adjacent[b].add(a)
        heapq.heappush(heap, (-similarity(regions[a], regions[b], h * w), a, b))
    merges = []
    next_id = k
    while heap:
        _, a, b = heapq.heappop(heap)
        if a not in regions or b not in regions:
            continue  # one of them was merged already: a stale pair
        new = merge(regions.pop(a), regions.pop(b))
        regions[next_id] = new
        boxes.append(new.box)
        merges.append((a, b, next_id))
        around = (adjacent.pop(a) | adjacent.pop(b)) - {a, b}
        adjacent[next_id] = around
        for n in around:
            adjacent[n] -= {a, b}
            adjacent[n].add(next_id)
            heapq.heappush(heap, (-similarity(new, regions[n], h * w), n, next_id))
        next_id += 1
    return Hierarchy(labels, np.array(boxes, np.float32).reshape(-1, 4), merges)


def unique_boxes(boxes: np.ndarray, min_side: float = 8.0) -> np.ndarray:
    """Drop repeated and tiny boxes, keeping the first occurrence (the order of formation)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_side) & ((boxes[:, 3] - boxes[:, 1]) >= min_side)
    _, first = np.unique(boxes[keep], axis=0, return_index=True)
    return boxes[keep][np.sort(first)]


def diversified_search(image: np.ndarray, scales=(100, 300), colour_spaces=("rgb", "hsv"),
                       min_size: int = 50) -> np.ndarray:
    """The paper's diversification: several initial segmentations (scales k) in several colour
    spaces; the union of their proposals, without repeats: float [N, 4] xyxy."""
    out = []
    for space in colour_spaces:
        img = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL) if space == "hsv" else image
        for k in scales:
            out.append(selective_search(img, scale=k, min_size=min_size).boxes)
    return unique_boxes(np.concatenate(out) if out else np.zeros((0, 4), np.float32))
