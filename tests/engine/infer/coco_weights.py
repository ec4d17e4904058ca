"""Stand-ins for torchvision's COCO weights where the machine cannot download them: a randomly
initialised torchvision detector saved under the file name torchvision gives its real weights.
Its boxes mean nothing. Untrained batch-norm statistics make every feature vanish (1e-14 after
the backbone), so every candidate would score the same: ``calibrate_batchnorm`` re-estimates them
on noise so that scores differ from box to box; ``person_bias`` makes "person" the likely class so
that views and pre-labelling have detections to show and store."""
from __future__ import annotations

from pathlib import Path


def calibrate_batchnorm(model, size: int = 320, passes: int = 3, seed: int = 0):
    """Batch-norm running statistics of ``model.backbone`` from a few noise images [2, 3, size, size]."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the passes
    model.backbone.train()
    with torch.no_grad():
        for _ in range(passes):
            model.backbone(torch.randn(2, 3, size, size, generator=gen))
    model.eval()
    return model


def write_test_coco_weights(folder, arch: str = "fasterrcnn_mobilenet_v3_large_320_fpn",
                            person_bias: float = 6.0, seed: int = 0) -> Path:
    import torch
    import torchvision.models.detection as det

    from engine.infer.detector_api import torchvision_file_name

    torch.manual_seed(seed)
    model = getattr(det, arch)(weights=None, weights_backbone=None, num_classes=91)
    calibrate_batchnorm(model, seed=seed)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[1] += person_bias  # index 1: "person"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / torchvision_file_name(arch)
    torch.save(model.state_dict(), path)
    return path
