"""Verification and one-shot recognition figures of an embedding (numpy; no torch, no Qt).

- Pairs: every positive pair of the items (capped) and as many negative pairs drawn at random
  with a fixed seed, so the same embedding always gives the same figures.
- ROC of "same" for decreasing distance: a pair is called "same" when d <= tau. EER is where the
  false-accept rate equals the false-reject rate (interpolated between ROC points); ``tau`` is
  the distance there; ``acc_at_tau`` the share of pairs decided right at that tau.
- N-way one-shot: a gallery of one item for each of N identities and one query of one of them
  (another item); right when the nearest gallery item is the query's identity; with ``tau``
  a query farther than tau from all of them is "not recognised" (counted wrong).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] between rows (float64 for stable small values)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def verification_pairs(labels: Sequence[int], max_positive: int = 20000, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same) arrays: positive pairs (at most ``max_positive``) and as many negatives."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(len(labels), k=1)
    same = labels[i] == labels[j]
    pi, pj = i[same], j[same]
    if len(pi) > max_positive:
        keep = rng.choice(len(pi), max_positive, replace=False)
        pi, pj = pi[keep], pj[keep]
    ni, nj = i[~same], j[~same]
    if len(ni) > len(pi):
        keep = rng.choice(len(ni), max(1, len(pi)), replace=False)
        ni, nj = ni[keep], nj[keep]
    return (np.concatenate([pi, ni]), np.concatenate([pj, nj]),
            np.concatenate([np.ones(len(pi), bool), np.zeros(len(ni), bool)]))


def roc_curve(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) of "same when d <= tau", one point per distinct distance, the first
    at tau = -inf (nothing accepted). Plain numpy, as scikit-learn's ``roc_curve`` on -d without
    dropping collinear points: importing scikit-learn inside a training thread held the GIL (and
    the workbench's GUI thread) for ~0.4 s."""
    d = np.asarray(distances, np.float64)
    same = np.asarray(same, bool)
    order = np.argsort(d, kind="mergesort")
    d, s = d[order], same[order]
    last = np.r_[np.flatnonzero(np.diff(d)), len(d) - 1]  # the last index of each distinct distance
    tps = np.cumsum(s)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / max(1, s.sum())]
    fpr = np.r_[0.0, fps / max(1, (~s).sum())]
    return fpr, tpr, np.r_[-np.inf, d[last]]


def roc(distances: np.ndarray, same: np.ndarray) -> dict:
    """ROC of "same when d <= tau": {"fpr", "tpr", "thresholds" (tau per point), "auc", "eer",
    "tau" (the EER threshold), "acc_at_tau"}."""
    d = np.asarray(distances, np.float64)
    same = np.asarray(same, bool)
    if same.all() or not same.any():
        raise ValueError("ROC needs both same and different pairs")
    fpr, tpr, thresholds = roc_curve(d, same)
    frr = 1.0 - tpr
    k = int(np.argmax(fpr >= frr))  # first point where false accepts reach false rejects
    if k == 0:
        eer, tau = float(fpr[0]), float(d.min())
    else:
        # the crossing between points k-1 and k, linearly
        g0, g1 = fpr[k - 1] - frr[k - 1], fpr[k] - frr[k]
        t = g0 / (g0 - g1) if g0 != g1 else 0.0
        eer = float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))
        lo = thresholds[k - 1] if np.isfinite(thresholds[k - 1]) else thresholds[k]
        tau = float(lo + t * (thresholds[k] - lo))
    acc = float(((d <= tau) == same).mean())
    return {"fpr": fpr, "tpr": tpr, "thresholds": thresholds, "auc": float(np.trapezoid(tpr, fpr)),
            "eer": eer, "tau": tau, "acc_at_tau": acc}


def accuracy_at(distances: np.ndarray, same: np.ndarray, tau: float) -> float:
    return float(((np.asarray(distances) <= tau) == np.asarray(same, bool)).mean())


def one_shot_accuracy(embeddings: np.ndarray, labels: Sequence[int], ways: int, episodes: int = 400,
                      seed: int = 0, tau: float | None = None) -> float | None:
    """Share of N-way one-shot episodes answered right (None when fewer than 2 identities have
    two items). ``ways`` is lowered to the identities available."""
    labels = np.asarray(labels)
    emb = np.asarray(embeddings, np.float64)
    by_id: dict[int, np.ndarray] = {int(u): np.flatnonzero(labels == u) for u in np.unique(labels)}
    usable = [u for u, idx in by_id.items() if len(idx) >= 2]
    if len(usable) < 2:
        return None
    ways = min(int(ways), len(usable))
    rng = np.random.default_rng(seed)
    right = 0
    for _ in range(int(episodes)):
        ids = rng.choice(usable, ways, replace=False)
        target = int(rng.integers(ways))
        gallery = []
        query = -1
        for n, u in enumerate(ids):
            pick = rng.choice(by_id[int(u)], 2 if n == target else 1, replace=False)
            gallery.append(pick[0])
            if n == target:
                query = pick[1]
        d = distance_matrix(emb[[query]], emb[gallery])[0]
        best = int(np.argmin(d))
        right += int(best == target and (tau is None or d[best] <= tau))
    return right / float(episodes)


def verification_report(embeddings: np.ndarray, labels: Sequence[int], seed: int = 0, episodes: int = 400,
                        tau: float | None = None) -> dict:
    """The figures of ``visionbench eval`` for an embedding: eer, roc_auc, tau, acc_at_tau,
    oneshot_acc_5way, oneshot_acc_20way (plus the pair counts). ``tau`` given: accuracy there
    (the EER threshold is still reported as ``eer_tau``)."""
    i, j, same = verification_pairs(labels, seed=seed)
    emb = np.asarray(embeddings, np.float64)
    d = np.sqrt(np.maximum(((emb[i] - emb[j]) ** 2).sum(1), 0.0))
    r = roc(d, same)
    out = {"eer": r["eer"], "roc_auc": r["auc"], "tau": r["tau"], "acc_at_tau": r["acc_at_tau"],
           "positive_pairs": int(same.sum()), "negative_pairs": int((~same).sum()),
           "identities": int(len(np.unique(labels))), "items": int(len(labels))}
    if tau is not None:
        out.update(eer_tau=r["tau"], tau=float(tau), acc_at_tau=accuracy_at(d, same, float(tau)))
    for ways in (5, 20):
        out[f"oneshot_acc_{ways}way"] = one_shot_accuracy(emb, labels, ways, episodes, seed)
    return out


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` [N, D] projected on their first two principal axes [N, 2] (centred; the sign
    of each axis as scikit-learn's PCA chooses it, so the views agree)."""
    x = np.asarray(x, np.float64)
    centred = x - x.mean(0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    # scikit-learn's PCA (svd_flip, v-based): the largest |entry| of each axis is positive
    k = min(2, len(vt))
    signs = np.sign(vt[range(k), np.argmax(np.abs(vt[:k]), axis=1)])
    signs[signs == 0] = 1.0
    out = u[:, :k] * s[:k] * signs
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out
