"""EfficientNet-Lite0 (offline pretrained): correctness on chelsea and CPU speed.

Run: ``python -m benchmarks.backbone_lite0`` (prints JSON).
"""
from __future__ import annotations

import json
import time

import torch
import torch.nn.functional as F


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main() -> dict:
    from skimage import data

    from engine.device import pick_device
    from engine.models.backbones import efficientnet_lite0, preprocess

    device = pick_device("auto")
    model = efficientnet_lite0(pretrained=True).to(device)
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None] / 255.0
    x = preprocess(F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)).to(device)
    with torch.inference_mode():
        probs = model(x).softmax(1)[0].cpu()
        top5 = probs.topk(5)
        batch = x.expand(8, -1, -1, -1).contiguous()
        big = torch.zeros(1, 3, 512, 512, device=device)
        latency_1 = _time(lambda: model(x), 10)
        latency_8 = _time(lambda: model(batch), 3)
        features_512 = _time(lambda: model.features(big), 3)
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "chelsea_top5": top5.indices.tolist(),
        "chelsea_p285_egyptian_cat": round(float(probs[285]), 4),
        "ms_224_batch1": round(1e3 * latency_1, 2),
        "ms_224_batch8_per_image": round(1e3 * latency_8 / 8, 2),
        "ms_features_512x512": round(1e3 * features_512, 2),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
