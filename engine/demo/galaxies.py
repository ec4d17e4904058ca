"""Synthetic "galaxies" set: Sersic-profile galaxies with unresolved star-forming clumps.

Each image (SIZE x SIZE, 8-bit grayscale PNG) holds 1-3 galaxies with surface brightness
    I(r) = Ie * exp(-b_n * ((r / re) ** (1 / n) - 1))
on elliptical radii r (axis ratio q = 1 - ellipticity, position angle theta), plus 2-6 clumps per
galaxy: Gaussian PSF blobs (sigma PSF_SIGMA px) placed inside the galaxy. Sky background, Gaussian
read noise and Poisson-like shot noise are added, then an asinh stretch maps counts to 0..255.

Annotations (all `MaskRLE`):
- "galaxy": the isophote where the galaxy's own model exceeds ISOPHOTE counts; where two galaxies
  overlap, a pixel belongs to the brighter one, so galaxy masks never overlap.
- "clump": a disc of radius CLUMP_RADIUS_SIGMAS * sigma around the known centre; attributes hold the
  centre {"x", "y"} in pixels (pixel-corner frame: pixel (col, row) spans [col, col+1)), "sigma" and
  "galaxy" (the instance_id of its galaxy).
Galaxy attributes hold the true profile: n, re (px), q, theta (radians), ie (counts).

The noise-free model of each image (the same light and stretch, no sky noise) is its pair target
(engine.annotations.formats.pairs.target_path: ``galaxies.targets/galaxy_NNNN.png``), so an
image-to-image model can learn observed -> model.

Re-observations: images come in groups of OBSERVATIONS; the later images of a group observe the
first one's galaxies again, rotated about the image centre, through another PSF and with new
noise. A galaxy's ``identity`` attribute (``galaxy-<group>-<k>``) is the same in every
observation, so "is this the same galaxy?" can be trained and asked; a group stays in one split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engine.annotations.formats.pairs import target_path
from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation
from engine.annotations.store import ProjectStore

from .shapes import DEMO_TIME, VAL_FRACTION

CATEGORIES = (("galaxy", "#ffe119"), ("clump", "#f032e6"))
SIZE = 128
PSF_SIGMA = 1.2           # pixels
CLUMP_RADIUS_SIGMAS = 2.0
SKY = 20.0                # background counts per pixel
READ_NOISE = 3.0          # counts
ISOPHOTE = 12.0           # counts above sky that bound a galaxy's mask (~4 x read noise)
OBSERVATIONS = 3          # each field is observed this many times (verification: "the same galaxy?")

Progress = Callable[[int, int], None]


def sersic_b(n: float) -> float:
    """b_n such that re encloses half the light (Ciotti & Bertin 1999 asymptotic series)."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def sersic_image(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, n: float, re: float, q: float,
                 theta: float, ie: float) -> np.ndarray:
    """Sersic surface brightness (counts) at pixel centres xx, yy [H, W]."""
    dx, dy = xx - cx, yy - cy
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * dx + s * dy, -s * dx + c * dy
    r = np.sqrt(u * u + (v / q) ** 2)
    return ie * np.exp(-sersic_b(n) * ((r / re) ** (1.0 / n) - 1.0))


def draw_field(rng: np.random.Generator, size: int = SIZE) -> dict:
    """The truth of one field, before any observation: galaxy profiles and clumps.

    Returns {"galaxies": [params dict (x, y, n, re, q, theta, ie)], "clumps": [(galaxy index,
    u, v, peak factor, peak offset)]} with clump offsets (u, v) along the galaxy's own axes."""
    params: list[dict] = []
    centres: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(1, 4))):
        for _try in range(20):
            re = rng.uniform(6.0, 16.0)
            cx, cy = rng.uniform(0.2, 0.8, 2) * size
            if all(np.hypot(cx - ox, cy - oy) > 1.2 * (re + ore) for ox, oy, ore in centres):
                break
        else:
            continue
        p = dict(x=float(cx), y=float(cy), n=float(rng.uniform(0.5, 4.0)), re=float(re),
                 q=float(1.0 - rng.uniform(0.0, 0.6)), theta=float(rng.uniform(0, np.pi)),
                 ie=float(rng.uniform(25.0, 60.0)))
        centres.append((cx, cy, re))
        params.append(p)
    clumps = []
    for k, p in enumerate(params):
        for _ in range(int(rng.integers(2, 7))):
            # inside the galaxy: uniform angle, radius up to 1.2 re along the ellipse
            a, rad = rng.uniform(0, 2 * np.pi), p["re"] * 1.2 * np.sqrt(rng.uniform(0.02, 1.0))
            clumps.append((k, rad * np.cos(a), rad * p["q"] * np.sin(a), rng.uniform(0.5, 1.2),
                           rng.uniform(20.0, 50.0)))
    return {"galaxies": params, "clumps": clumps}


def stretch(counts_above_sky: np.ndarray) -> np.ndarray:
    """Counts above the sky -> uint8 gray: the asinh stretch of the images."""
    stretched = np.arcsinh(np.maximum(counts_above_sky, -SKY) / 8.0) / np.arcsinh(400.0 / 8.0)
    return np.clip(30 + 225 * stretched, 0, 255).astype(np.uint8)


def observe_field(field: dict, rng: np.random.Generator, size: int = SIZE, angle: float = 0.0,
                  psf_sigma: float = PSF_SIGMA, model_out: list | None = None):
    """One observation of a field: rotated by ``angle`` (radians) about the image centre, blurred
    clumps of PSF ``psf_sigma`` (pixels), fresh noise. ``model_out``, when given, receives the
    noise-free model image (uint8 gray [size, size]; drawing it takes nothing from ``rng``).

    Returns (uint8 gray [size, size], galaxies, clumps) where galaxies = [(mask [H, W] uint8, params dict)]
    and clumps = [(mask [H, W] uint8, {"x", "y", "sigma", "galaxy": index into galaxies})]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5  # pixel centres
    ca, sa = np.cos(angle), np.sin(angle)
    mid = size / 2.0
    params = []
    for p in field["galaxies"]:
        dx, dy = p["x"] - mid, p["y"] - mid
        params.append(dict(p, x=float(mid + ca * dx - sa * dy), y=float(mid + sa * dx + ca * dy),
                           theta=float((p["theta"] + angle) % np.pi)))
    models = [sersic_image(xx, yy, p["x"], p["y"], p["n"], p["re"], p["q"], p["theta"], p["ie"]) for p in params]
    stack = np.stack(models)
    owner = stack.argmax(axis=0)
    galaxies = [(((owner == k) & (stack[k] > ISOPHOTE)).astype(np.uint8), p) for k, p in enumerate(params)]
    # (each mask is non-empty: inside re a profile is >= ie > ISOPHOTE, and the centre is its own)

    signal = stack.sum(axis=0)
    clumps = []
    for k, u, v, factor, offset in field["clumps"]:
        p = params[k]
        c, s = np.cos(p["theta"]), np.sin(p["theta"])
        x, y = p["x"] + c * u - s * v, p["y"] + s * u + c * v
        if not (2 <= x <= size - 2 and 2 <= y <= size - 2):
            continue
        # peak above the local galaxy light, so a clump stands out on bright bulges and faint disks
        ix, iy = min(int(x), size - 1), min(int(y), size - 1)
        peak = factor * stack[k][iy, ix] + offset
        d2 = (xx - x) ** 2 + (yy - y) ** 2
        signal = signal + peak * np.exp(-d2 / (2 * psf_sigma ** 2))
        mask = (d2 <= (CLUMP_RADIUS_SIGMAS * psf_sigma) ** 2).astype(np.uint8)
        clumps.append((mask, {"x": round(float(x), 3), "y": round(float(y), 3), "sigma": round(float(psf_sigma), 4),
                              "galaxy": k}))

    if model_out is not None:
        model_out.append(stretch(signal))
    counts = SKY + signal
    counts = counts + rng.normal(0, 1, counts.shape) * np.sqrt(READ_NOISE ** 2 + counts)  # shot + read noise
    return stretch(counts - SKY), galaxies, clumps


def render_field(rng: np.random.Generator, size: int = SIZE):
    """A new field observed once, unrotated (see :func:`observe_field` for what it returns)."""
    return observe_field(draw_field(rng, size), rng, size)


def build_galaxies(out_dir: str | Path, n_images: int = 400, seed: int = 0,
                   progress: Progress | None = None) -> Path:
    """Write OUT/galaxies/*.png, their noise-free models OUT/galaxies.targets/*.png and
    OUT/galaxies.vbproj; returns the project path."""
    out_dir = Path(out_dir)
    img_dir = out_dir / "galaxies"
    img_dir.mkdir(parents=True, exist_ok=True)
    target_path(img_dir / "x.png").parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 2])
    groups = (n_images + OBSERVATIONS - 1) // OBSERVATIONS
    val = set(rng.permutation(groups)[:int(round(groups * VAL_FRACTION))].tolist())
    project = out_dir / "galaxies.vbproj"
    store = ProjectStore.create(project)
    try:
        with store.transaction():
            cats = {name: store.add_category(name, color).id for name, color in CATEGORIES}
            anns: list[Annotation] = []
            instance = 0
            field: dict = {}
            for i in range(n_images):
                group, seen = divmod(i, OBSERVATIONS)
                model: list[np.ndarray] = []
                if seen == 0:
                    field = draw_field(rng)
                    img, galaxies, clumps = observe_field(field, rng, model_out=model)
                else:  # the same galaxies again: rotated, through another PSF, with new noise
                    img, galaxies, clumps = observe_field(field, rng, angle=float(rng.uniform(0, 2 * np.pi)),
                                                          psf_sigma=float(rng.uniform(0.9, 1.7)), model_out=model)
                f = img_dir / f"galaxy_{i:04d}.png"
                cv2.imwrite(str(f), img)
                cv2.imwrite(str(target_path(f)), model[0])
                rec = store.add_image(f, SIZE, SIZE, split="val" if group in val else "train", status="done")
                galaxy_ids = []
                for k, (mask, p) in enumerate(galaxies):
                    instance += 1
                    galaxy_ids.append(instance)
                    attrs = {**{key: round(v, 4) for key, v in p.items()}, "identity": f"galaxy-{group:04d}-{k}",
                             "observation": seen}
                    anns.append(Annotation(rec.id, cats["galaxy"], encode_mask(mask), instance_id=instance,
                                           attributes=attrs, source="synthetic",
                                           created=DEMO_TIME, updated=DEMO_TIME))
                for mask, attrs in clumps:
                    instance += 1
                    attrs = dict(attrs, galaxy=galaxy_ids[attrs["galaxy"]])
                    anns.append(Annotation(rec.id, cats["clump"], encode_mask(mask), instance_id=instance,
                                           attributes=attrs, source="synthetic",
                                           created=DEMO_TIME, updated=DEMO_TIME))
                if progress:
                    progress(i + 1, n_images)
            store.bulk_insert_annotations(anns)
    finally:
        store.close()
    return project
