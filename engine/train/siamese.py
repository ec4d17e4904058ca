"""The Siamese family on the one training loop (engine.train.loop): what differs for embeddings.

Data: the project's identities (``engine.data.identities``), split by identity; every item is
read once as a square crop into memory. Batches are P x K per process: P identities drawn without
replacement per epoch, K items each (drawn with replacement when an identity has fewer).
Validation: the verification figures of ``engine.eval.verification`` on the validation
identities; the metric that picks the best checkpoint is the 20-way one-shot accuracy (fewer
ways when there are fewer validation identities). Previews: "embedding" (kind scatter: the
validation embeddings in 2-D, PCA or t-SNE, coloured by identity) and "hardest triplets"
(kind image_row: anchor | positive | negative crops of the last batch with their distances).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.annotations.errors import BadInput
from engine.data.identities import check_identities, identity_items, load_crops, split_identities
from engine.data.datasets import open_project
from engine.eval.verification import pca_2d, verification_report
from engine.jobs.events import Log
from engine.models.siamese import DEFAULT_CONFIG, LOSSES, MINING, SCATTER, build_siamese, siamese_loss
from engine.train.loop import Trainer
from engine.viz import previews as pv

SCATTER_IDENTITIES = 12   # identities in the live scatter (a legend that still fits beside it)
SCATTER_POINTS = 240


def crops_to_tensor(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [N, S, S, 3] -> float [N, 3, S, S] in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float().div_(255.0)


@torch.no_grad()
def embed_crops(model: torch.nn.Module, crops: np.ndarray, device: torch.device, batch_size: int = 128,
                token=None, features: bool = False) -> np.ndarray:
    """Embeddings float32 [N, D] of uint8 crops [N, S, S, 3], in eval mode (the mode is restored).
    ``features``: the pooled encoder output instead (the pretrained-only embedding)."""
    was = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(crops), batch_size):
            if token is not None:
                token.raise_if_cancelled()
            x = crops_to_tensor(crops[start:start + batch_size], device)
            y = model.features(x) if features else model(x)
            out.append(y.float().cpu().numpy())
    finally:
        model.train(was)
    dim = model.embedding_dim if not features else model.feature_dim
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def random_affine(x: torch.Tensor, generator: torch.Generator | None = None, strength: float = 1.0) -> torch.Tensor:
    """Small random rotation, scale, shift and brightness per image of x [N, 3, S, S] (one
    batched grid sample: cheap next to the encoder)."""
    n = len(x)
    r = torch.rand(n, 5, generator=generator).to(x.device) * 2 - 1
    angle = r[:, 0] * 0.15 * strength
    scale = 1.0 + r[:, 1] * 0.08 * strength
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, r[:, 2] * 0.08 * strength], 1),
                         torch.stack([sin, cos, r[:, 3] * 0.08 * strength], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    return (out * (1.0 + r[:, 4, None, None, None] * 0.15 * strength)).clamp_(0.0, 1.0)


class PKBatches:
    """One epoch of P x K batches: (item indices int64 [P*K], labels int64 [P*K]).

    Epoch e visits the identities in an order drawn from (seed, e) alone; step s of W ranks takes
    the next P * W identities of it and rank r the r-th P of them, so the ranks' batches are
    disjoint and two ranks with P see what one process with 2P sees. The K items of an identity
    come from (seed, e, its place in the order). ``set_epoch(e, skip)`` (called by the loop)
    starts epoch e after its first ``skip`` batches: a resumed run sees the batches an
    uninterrupted one would have. With fewer than 2 identities per rank, the order is repeated
    to fill every rank's batches (as DistributedSampler pads)."""

    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.labels = labels
        self.by_id = [np.flatnonzero(labels == u) for u in range(int(labels.max()) + 1)]
        self.rank, self.world = int(rank), max(1, int(world))
        share = len(self.by_id) // self.world if len(self.by_id) >= 2 * self.world else len(self.by_id)
        self.p = max(2, min(int(p), share))
        self.k = max(2, int(k))
        self.seed = int(seed) & 0xFFFFFFFF
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), max(0, int(skip))

    def __len__(self) -> int:
        return max(1, len(self.by_id) // (self.p * self.world))

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.by_id))
        steps = len(self)
        need = steps * self.p * self.world
        order = np.resize(order, max(need, len(order)))  # repeats the order when it is too short
        for step in range(self.skip, steps):
            start = (step * self.world + self.rank) * self.p
            picks = []
            for place in range(start, start + self.p):
                items = self.by_id[order[place]]
                rng = np.random.default_rng([self.seed, self.epoch, place])
                picks.append(rng.choice(items, self.k, replace=len(items) < self.k))
            index = np.concatenate(picks).astype(np.int64)
            yield torch.from_numpy(index), torch.from_numpy(self.labels[index].astype(np.int64))


@torch.no_grad()
def stem_features(model, crops: np.ndarray, device: torch.device, batch_size: int = 128, token=None) -> torch.Tensor:
    """The frozen stem's output for every crop, float [N, C, h, w] on ``device``."""
    out = []
    for start in range(0, len(crops), batch_size):
        if token is not None:
            token.raise_if_cancelled()
        out.append(model.stem(crops_to_tensor(crops[start:start + batch_size], device)))
    return torch.cat(out)


class SiameseTrainer(Trainer):
    family = "siamese"
    kind = "embedding"
    metric = "oneshot_acc_20way"
    defaults = dict(DEFAULT_CONFIG)

    def setup(self):
        cfg = self.cfg
        for key, allowed in (("loss", LOSSES), ("mining", MINING), ("scatter", SCATTER)):
            if cfg[key] not in allowed:
                raise BadInput("config", key, f"must be one of {', '.join(allowed)}, got {cfg[key]!r}")
        size = int(cfg["input_size"])
        yield Log(f"reading identities of {self.store_path}")
        store = open_project(self.store_path)
        try:
            items, source = identity_items(store, cfg.get("identity_source", "auto"))
            check_identities(items, str(self.store_path))
            parts = split_identities(store, items, float(cfg["val_fraction"]))
            train, val = parts["train"], parts["val"]
            check_identities(train, str(self.store_path), "identities of split 'train'")
            if len({it.identity for it in val}) < 2:
                raise BadInput(str(self.store_path), "identities of split 'val'",
                               "fewer than 2 validation identities; move some identities' images to split 'val'")
            val = _limit(val, int(cfg["val_limit"]))
            self.train_names = sorted({it.identity for it in train})
            self.val_names = sorted({it.identity for it in val})
            self.train_crops = load_crops(store, train, size, self.token.raise_if_cancelled)
            self.val_crops = load_crops(store, val, size, self.token.raise_if_cancelled)
        finally:
            store.close()
        self.identity_source = source
        index = {n: k for k, n in enumerate(self.train_names)}
        train_labels = np.array([index[it.identity] for it in train], np.int64)
        vindex = {n: k for k, n in enumerate(self.val_names)}
        self.val_labels = np.array([vindex[it.identity] for it in val], np.int64)
        yield Log(f"{len(train)} items of {len(self.train_names)} training identities, {len(val)} of "
                  f"{len(self.val_names)} validation identities (identities from the {source}); device {self.device}")
        seed = int(cfg.get("seed", 0))
        self.loader = PKBatches(train_labels, int(cfg["p_identities"]), int(cfg["k_per_identity"]), seed,
                                self.dist.rank, self.dist.world)
        model = build_siamese(cfg).to(self.device)
        self.model = model
        # a frozen stem gives the same output for a picture every time: compute it once (the
        # training pictures only when they are not augmented)
        self.train_stem = self.val_stem = None
        if model.frozen_blocks:
            model.eval()
            self.val_stem = stem_features(model, self.val_crops, self.device, token=self.token)
            if not cfg["augment"]:
                self.train_stem = stem_features(model, self.train_crops, self.device, token=self.token)
            model.train()
            yield Log(f"encoder blocks 1-{model.frozen_blocks} frozen"
                      + ("; their output computed once per picture" if self.train_stem is not None else ""))
        encoder = [p for p in model.encoder.parameters() if p.requires_grad]
        rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
        lr = float(cfg["lr"])
        self.optimizers = [torch.optim.AdamW([
            {"params": encoder, "lr": lr * float(cfg["encoder_lr_scale"])},
            {"params": rest, "lr": lr}], weight_decay=float(cfg["weight_decay"]))]
        self.last: dict | None = None
        self.tau: float | None = None
        # the scatter shows a fixed subset, so successive pictures can be compared
        ids = np.unique(self.val_labels)[:SCATTER_IDENTITIES]
        chosen = np.flatnonzero(np.isin(self.val_labels, ids))[:SCATTER_POINTS]
        self.scatter_index = chosen

    def batches(self):
        return self.loader

    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def batch_size_per_process(self) -> int:
        return self.loader.p * self.loader.k

    def loss(self, batch):
        index, labels = batch
        if self.train_stem is not None:
            emb = self.model.tail(self.train_stem[index.to(self.train_stem.device)])
        else:
            x = crops_to_tensor(self.train_crops[index.cpu().numpy()], self.device)
            if self.cfg["augment"]:
                x = random_affine(x)  # from this rank's torch RNG, which a resume restores
            emb = self.model(x)
        losses, info = siamese_loss(self.model, emb, labels, self.cfg)
        self.last = {"index": index.cpu().numpy(), "info": info}
        return losses

    @torch.no_grad()
    def embed_val(self, rows: np.ndarray | None = None) -> np.ndarray:
        if self.val_stem is None:
            crops = self.val_crops if rows is None else self.val_crops[rows]
            return embed_crops(self.model, crops, self.device, token=self.token)
        was = self.model.training
        self.model.eval()
        try:
            h = self.val_stem if rows is None else self.val_stem[torch.from_numpy(rows).to(self.val_stem.device)]
            return torch.cat([self.model.tail(h[s:s + 256]) for s in range(0, len(h), 256)]).float().cpu().numpy()
        finally:
            self.model.train(was)

    def validate(self):
        emb = self.embed_val()
        self.val_embeddings = emb
        report = verification_report(emb, self.val_labels, episodes=300)
        self.tau = report["tau"]
        # the figures only: counts of pairs and items would share the validation plot with them
        return {"eer": report["eer"], "roc_auc": report["roc_auc"], "tau": report["tau"],
                "acc_at_tau": report["acc_at_tau"], "oneshot_acc_20way": float(report["oneshot_acc_20way"] or 0.0),
                "oneshot_acc_5way": float(report["oneshot_acc_5way"] or 0.0)}

    def previews(self, step):
        index = self.scatter_index
        emb = getattr(self, "val_embeddings", None)
        if emb is None or len(emb) != len(self.val_crops):
            emb = self.embed_val(index)
        else:
            emb = emb[index]
        labels = self.val_labels[index]
        if self.cfg["scatter"] == "tsne" and len(emb) > 5:
            from sklearn.manifold import TSNE

            points = TSNE(2, perplexity=min(30.0, len(emb) / 4.0), init="pca", random_state=0).fit_transform(emb)
            how = "t-SNE"
        else:
            points, how = pca_2d(emb), "PCA"
        names = [self.val_names[u] for u in range(int(labels.max()) + 1)] if len(labels) else []
        yield pv.scatter("embedding", points, labels, names, step,
                         f"validation embeddings ({how}), {len(np.unique(labels))} identities")
        self.val_embeddings = None  # a preview between validations embeds the subset anew
        if self.last is not None:
            yield hardest_triplets_preview(self.train_crops[self.last["index"]], self.last["info"], step)

    def meta(self):
        return {"classes": [], "embedding_dim": int(self.cfg["embedding_dim"]),
                "input_size": int(self.cfg["input_size"]), "tau": self.tau,
                "identity_source": self.identity_source}

    def result(self):
        return {"tau": self.tau, "train_identities": len(self.train_names), "val_identities": len(self.val_names)}


def _limit(items, limit: int):
    """At most ``limit`` items, whole identities kept (the first ones in name order)."""
    out, seen = [], set()
    for it in items:
        if len(out) >= limit and it.identity not in seen:
            break
        seen.add(it.identity)
        out.append(it)
    return out


def hardest_triplets_preview(images: np.ndarray, info: dict, step: int, count: int = 3):
    """The ``count`` triplets of the last batch with the largest d(a,p) - d(a,n), as one image
    row: anchor | positive (distance) | negative (distance), repeated."""
    a, p, n, dist = info["anchors"], info["positives"], info["negatives"], info["dist"]
    if len(a) == 0:
        return pv.image_row("hardest triplets", [np.zeros((8, 8), np.uint8)], ["no triplet"], step)
    gap = (dist[a, p] - dist[a, n]).float().cpu().numpy()
    order = np.argsort(-gap)
    pictures, titles, used = [], [], set()
    for t in order:
        ai = int(a[t])
        if ai in used:
            continue
        used.add(ai)
        pi, ni = int(p[t]), int(n[t])
        pictures += [images[ai], images[pi], images[ni]]
        titles += ["anchor", f"positive d={float(dist[ai, pi]):.2f}", f"negative d={float(dist[ai, ni]):.2f}"]
        if len(used) >= count:
            break
    return pv.image_row("hardest triplets", pictures, titles, step,
                        "hardest triplets of the last batch: anchor | positive | negative")
