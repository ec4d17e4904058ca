"""Stand-ins for torchvision's COCO weights where the machine cannot download them: a randomly
initialised torchvision detector saved under the file name torchvision gives its real weights.
Its boxes mean nothing; ``person_bias`` makes every proposal a confident "person" so that views
and pre-labelling have detections to show and store."""
from __future__ import annotations

from pathlib import Path


def write_test_coco_weights(folder, arch: str = "fasterrcnn_mobilenet_v3_large_320_fpn",
                            person_bias: float = 6.0, seed: int = 0) -> Path:
    import torch
    import torchvision.models.detection as det

    from engine.infer.detector_api import torchvision_file_name

    torch.manual_seed(seed)
    model = getattr(det, arch)(weights=None, weights_backbone=None, num_classes=91)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[1] += person_bias  # index 1: "person"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / torchvision_file_name(arch)
    torch.save(model.state_dict(), path)
    return path
