"""U-Net shapes, configuration errors, encoders and losses (tiny configurations only)."""
import pytest
import torch

from engine.models.registry import get_family
from engine.models.unet import UNet, dice_loss, segmentation_loss, weighted_cross_entropy


@pytest.mark.parametrize("size", [(32, 32), (37, 45)])
def test_plain_unet_keeps_the_image_size(size):
    model = UNet(num_classes=2, depth=2, width=8).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, *size)
    # transposed-convolution up-sampling and skip concatenation are really there
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules()) == 2
    assert model.multiple == 4


def test_depth_and_width_change_the_network():
    small = UNet(1, depth=2, width=4)
    big = UNet(1, depth=3, width=8)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(big) > 4 * n(small)
    assert big.multiple == 8


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="encoder"):
        UNet(1, encoder="resnet")
    with pytest.raises(ValueError, match="depth"):
        UNet(1, depth=0)


def test_efficientnet_encoder_uses_the_pretrained_backbone():
    from engine.models.backbones import load_pretrained_state_dict

    model = UNet(num_classes=1, width=4, encoder="efficientnet_lite0", pretrained=True).eval()
    ref = load_pretrained_state_dict()["_conv_stem.weight"]
    assert torch.equal(model.backbone._conv_stem.weight.detach(), ref)
    with torch.no_grad():
        y = model(torch.rand(1, 3, 40, 56))
    assert y.shape == (1, 2, 40, 56)


def test_weighted_cross_entropy_weights_pixels():
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[0, 1], [1, 1]]])
    plain = weighted_cross_entropy(logits, target, None)
    assert plain.item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    weight = torch.tensor([[[4.0, 0.0], [0.0, 0.0]]])
    assert weighted_cross_entropy(logits, target, weight).item() == pytest.approx(plain.item())


def test_dice_loss_is_zero_for_a_perfect_prediction_and_large_for_a_wrong_one():
    target = torch.tensor([[[0, 1], [2, 2]]])
    good = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    bad = torch.nn.functional.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).float() * 50
    assert dice_loss(good, target).item() < 0.2
    assert dice_loss(bad, target).item() > 0.6  # smoothing keeps it below 1 on 4 pixels
    with pytest.raises(ValueError, match="loss"):
        segmentation_loss("focal", good, target, None)


def test_unet_is_registered():
    spec = get_family("unet")
    assert spec.kind == "segmentation"
    model = spec.build({"depth": 2, "width": 4}, 3)
    assert model.head.out_channels == 4


def test_training_module_imports_on_its_own():
    """engine.models.unet and engine.train.segmentation import each other; either may come first."""
    import subprocess
    import sys

    for module in ("engine.train.segmentation", "engine.models.unet"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-500:]
