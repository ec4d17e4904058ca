"""Siamese embedding network and its three losses (verification, one-shot recognition, search).

The network is the shipped EfficientNet-Lite0 encoder (ImageNet weights) with a projection head
to an L2-normalised embedding ``f(x)`` (``embedding_dim``, 128 by default), so the Euclidean
distance ``d = ||f(a) - f(b)||`` lies in [0, 2] and one threshold tau decides "same identity".

Losses (pure tensor functions, shapes in the docstrings):
- triplet loss with a margin alpha, ``max(0, d(a,p) - d(a,n) + alpha)``, on the triplets of a
  P x K batch chosen by batch-hard mining (for each anchor its farthest positive and nearest
  negative) or FaceNet's semi-hard mining (for each positive pair the nearest negative that is
  still farther than the positive);
- contrastive loss on all pairs of the batch (Hadsell, Chopra & LeCun 2006):
  ``1/2 d^2`` for same, ``1/2 max(0, m - d)^2`` for different identities;
- a binary same/different head on ``|f(x1) - f(x2)|`` (Koch et al. 2015), binary cross-entropy,
  positives and negatives weighted equally (a P x K batch holds far more negative pairs).

Nothing here imports ``engine.train`` or ``engine.infer``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.backbones import HEAD_CHANNELS, efficientnet_lite0, preprocess

LOSSES = ("triplet", "contrastive", "binary")
MINING = ("batch_hard", "semi_hard")

DEFAULT_CONFIG = {
    "embedding_dim": 128,
    "input_size": 64,        # square crops (pixels) the encoder sees
    "loss": "triplet",
    "mining": "batch_hard",
    "margin": 0.3,           # triplet margin alpha, in units of the embedding distance (0..2)
    "contrastive_margin": 1.0,
    "p_identities": 16,      # P identities per batch ...
    "k_per_identity": 4,     # ... K images each
    "lr": 1e-3,
    "encoder_lr_scale": 0.3,  # the pretrained encoder moves slower than the new head
    "weight_decay": 1e-4,
    "augment": True,
    "frozen_blocks": 0,      # MBConv blocks of the encoder kept frozen (0..16); see SiameseNet
    "encoder_blocks": 16,    # MBConv blocks used (16: the whole encoder); see SiameseNet
    "pretrained": True,
    "val_fraction": 0.2,     # share of identities held out when the project names no val identities
    "val_limit": 600,        # validation items at most (embedding them is the cost of a validation)
    "scatter": "pca",        # the live 2-D view of the embeddings: pca, or tsne (slower)
    "warmup_steps": 30,
}
SCATTER = ("pca", "tsne")

# On a CPU the encoder ends after stage 4 (11 blocks, stride 16) and its first 8 blocks stay
# frozen; without augmentation their output is computed once per picture, so a step runs three
# blocks and the projection. Measured on the glyphs (20-way one-shot on unseen identities after
# 200 steps): 0.94 this way, 0.67 with the whole encoder and 5 frozen blocks (ADR 0024).
CPU_PRESET = dict(DEFAULT_CONFIG, encoder_blocks=11, frozen_blocks=8, augment=False, val_limit=400, epochs=1000,
                  max_seconds=600.0, preview_every=50)
GPU_PRESET = dict(DEFAULT_CONFIG, input_size=96, p_identities=32, k_per_identity=4, epochs=200,
                  max_seconds=None, cpu_threads=None, preview_every=50)


ENCODER_BLOCKS = 16  # MBConv blocks of EfficientNet-Lite0
_BLOCK_CHANNELS = (16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320)


def feature_channels(encoder_blocks: int) -> int:
    """Channels of the pooled feature of an encoder cut after ``encoder_blocks`` blocks (the
    whole encoder ends with its 1280-channel head convolution)."""
    return HEAD_CHANNELS if encoder_blocks >= ENCODER_BLOCKS else _BLOCK_CHANNELS[encoder_blocks - 1]


class SiameseNet(nn.Module):
    """Images [N, 3, S, S] (floats in [0, 1]) -> unit embeddings [N, D].

    ``encoder_blocks`` < 16 cuts the encoder after that many blocks: its pooled output is the
    feature (stage 4, 11 blocks, stride 16: mid-level features that tell strokes and parts apart
    better than ImageNet's last layers, measured on the glyphs). The encoder runs in two parts:
    ``stem`` (the stem convolution and the first
    ``frozen_blocks`` MBConv blocks, kept frozen with their ImageNet statistics when
    ``frozen_blocks`` > 0) and ``tail`` (the other blocks, the 1280-channel head convolution of
    the whole encoder, average pooling and the projection). A frozen stem's output never changes, so a trainer may
    compute it once per picture. ``features`` gives the pooled encoder output [N, feature_dim] (the
    "pretrained only" embedding); ``pair_logit`` is the binary head on two embeddings [N, D] -> [N].
    """

    def __init__(self, embedding_dim: int = 128, pretrained: bool = True, frozen_blocks: int = 0,
                 encoder_blocks: int = ENCODER_BLOCKS) -> None:
        super().__init__()
        self.encoder = efficientnet_lite0(pretrained=pretrained)
        self.encoder._fc = nn.Identity()  # the ImageNet classifier is not part of an embedding
        self.encoder._dropout = nn.Identity()
        self.encoder_blocks = max(1, min(int(encoder_blocks), ENCODER_BLOCKS))
        if self.encoder_blocks < ENCODER_BLOCKS:  # a shorter encoder: its pooled last block is the feature
            self.encoder._blocks = self.encoder._blocks[:self.encoder_blocks]
            self.encoder._conv_head = nn.Identity()
            self.encoder._bn1 = nn.Identity()
        self.feature_dim = feature_channels(self.encoder_blocks)
        self.frozen_blocks = max(0, min(int(frozen_blocks), self.encoder_blocks))
        self.head = nn.Sequential(nn.Linear(self.feature_dim, 512), nn.ReLU(inplace=True),
                                  nn.Linear(512, embedding_dim))
        self.pair_head = nn.Linear(embedding_dim, 1)
        self.embedding_dim = embedding_dim
        for p in self.stem_parameters():
            p.requires_grad_(False)

    def stem_modules(self) -> list[nn.Module]:
        if not self.frozen_blocks:
            return []
        e = self.encoder
        return [e._conv_stem, e._bn0, *e._blocks[:self.frozen_blocks]]

    def stem_parameters(self):
        return [p for m in self.stem_modules() for p in m.parameters()]

    def train(self, mode: bool = True) -> "SiameseNet":
        super().train(mode)
        for m in self.stem_modules():  # frozen: ImageNet statistics, whatever the mode
            m.eval()
        return self

    def stem(self, images_0_1: torch.Tensor) -> torch.Tensor:
        e = self.encoder
        x = F.relu6(e._bn0(e._conv_stem(preprocess(images_0_1))))
        for block in e._blocks[:self.frozen_blocks]:
            x = block(x)
        return x

    def tail_features(self, h: torch.Tensor) -> torch.Tensor:
        e = self.encoder
        for block in e._blocks[self.frozen_blocks:]:
            h = block(h)
        if self.encoder_blocks == ENCODER_BLOCKS:
            h = F.relu6(e._bn1(e._conv_head(h)))
        return torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)

    def tail(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.tail_features(h)), dim=1)

    def features(self, images_0_1: torch.Tensor) -> torch.Tensor:
        return self.tail_features(self.stem(images_0_1))

    def forward(self, images_0_1: torch.Tensor) -> torch.Tensor:
        return self.tail(self.stem(images_0_1))

    def pair_logit(self, e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        return self.pair_head((e1 - e2).abs()).squeeze(1)


def build_siamese(config: dict, num_classes: int = 0) -> SiameseNet:
    """The family's model builder (``num_classes`` is unused: an embedding has no classes)."""
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    return SiameseNet(int(cfg["embedding_dim"]), pretrained=bool(cfg.get("pretrained", True)),
                      frozen_blocks=int(cfg.get("frozen_blocks", 0)),
                      encoder_blocks=int(cfg.get("encoder_blocks", ENCODER_BLOCKS)))


# ---- distances and mining ------------------------------------------------------------------------
def pairwise_distances(emb: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [N, N] between rows of ``emb`` [N, D]; exactly 0 on the diagonal and a
    finite gradient there (sqrt of a clamped square)."""
    sq = (emb * emb).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T
    eye = torch.eye(len(emb), dtype=torch.bool, device=emb.device)
    return torch.sqrt(d2.clamp_min(1e-12)).masked_fill(eye, 0.0)


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same  # positives (not itself), negatives


def batch_hard_mining(dist: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each anchor i: its hardest positive (the farthest of its identity) and hardest negative
    (the nearest of another identity). dist [N, N], labels [N] -> (anchors, positives, negatives)
    index tensors, only for anchors that have both a positive and a negative."""
    pos, neg = _masks(labels)
    valid = pos.any(1) & neg.any(1)
    hardest_pos = dist.masked_fill(~pos, float("-inf")).argmax(1)
    hardest_neg = dist.masked_fill(~neg, float("inf")).argmin(1)
    anchors = torch.nonzero(valid).squeeze(1)
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


def semi_hard_mining(dist: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """FaceNet's choice: for every positive pair (a, p) the nearest negative n with
    d(a, p) < d(a, n) (semi-hard: inside the margin or beyond it, never closer than the positive);
    when no negative is farther than the positive, the farthest negative. Returns index tensors
    (anchors, positives, negatives), one triplet per positive pair."""
    pos, neg = _masks(labels)
    a_idx, p_idx = torch.nonzero(pos, as_tuple=True)
    d_ap = dist[a_idx, p_idx]
    d_an = dist[a_idx]                                  # [T, N]
    negs = neg[a_idx]
    farther = negs & (d_an > d_ap[:, None])
    semi = d_an.masked_fill(~farther, float("inf")).argmin(1)
    easiest = d_an.masked_fill(~negs, float("-inf")).argmax(1)
    n_idx = torch.where(farther.any(1), semi, easiest)
    keep = negs.any(1)
    return a_idx[keep], p_idx[keep], n_idx[keep]


# ---- losses -------------------------------------------------------------------------------------
def triplet_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float, mining: str = "batch_hard"
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean ``max(0, d(a,p) - d(a,n) + margin)`` over the mined triplets of ``emb`` [N, D].

    Returns (loss, info) with info = {"dist" [N, N] (detached), "anchors", "positives",
    "negatives" (index tensors), "active" (share of triplets with a positive loss)}."""
    if mining not in MINING:
        raise ValueError(f"mining must be one of {', '.join(MINING)}, got {mining!r}")
    dist = pairwise_distances(emb)
    miner = batch_hard_mining if mining == "batch_hard" else semi_hard_mining
    with torch.no_grad():
        a, p, n = miner(dist.detach(), labels)
    if len(a) == 0:
        zero = emb.sum() * 0.0
        return zero, {"dist": dist.detach(), "anchors": a, "positives": p, "negatives": n, "active": zero.detach()}
    per = F.relu(dist[a, p] - dist[a, n] + margin)
    return per.mean(), {"dist": dist.detach(), "anchors": a, "positives": p, "negatives": n,
                        "active": (per.detach() > 0).float().mean()}


def _pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    return i, j, labels[i] == labels[j]


def contrastive_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over all pairs i < j of ``1/2 d^2`` (same identity) or ``1/2 max(0, margin - d)^2``."""
    i, j, same = _pairs(labels)
    d = pairwise_distances(emb)[i, j]
    per = torch.where(same, 0.5 * d * d, 0.5 * F.relu(margin - d) ** 2)
    return per.mean()


def binary_pair_loss(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of same/different logits [T] against ``same`` [T] (bool), the mean
    over positive pairs and the mean over negative pairs averaged (each half weighs one half)."""
    target = same.to(logits.dtype)
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    parts = [per[m].mean() for m in (same, ~same) if bool(m.any())]
    return torch.stack(parts).mean()


def siamese_loss(model: SiameseNet, emb: torch.Tensor, labels: torch.Tensor, cfg: dict
                 ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The configured loss of a batch: ({"loss", ...terms}, mining info for the previews)."""
    kind = cfg["loss"]
    if kind == "triplet":
        loss, info = triplet_loss(emb, labels, float(cfg["margin"]), cfg["mining"])
        return {"loss": loss, "active_triplets": info["active"]}, info
    # the hardest triplets are still worth watching under the pair losses
    with torch.no_grad():
        dist = pairwise_distances(emb.detach())
        a, p, n = batch_hard_mining(dist, labels)
    info = {"dist": dist, "anchors": a, "positives": p, "negatives": n}
    if kind == "contrastive":
        return {"loss": contrastive_loss(emb, labels, float(cfg["contrastive_margin"]))}, info
    if kind == "binary":
        i, j, same = _pairs(labels)
        return {"loss": binary_pair_loss(model.pair_logit(emb[i], emb[j]), same)}, info
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
