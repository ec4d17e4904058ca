"""pix2pix networks: the PatchGAN sees 70 x 70 patches, the U-Net keeps the size, the losses are the paper's."""
import pytest
import torch
import torch.nn.functional as F

from engine.models.pix2pix import (PatchDiscriminator, Pix2Pix, UNetGenerator, channels_for, discriminator_losses,
                                   gan_loss, generator_losses, receptive_field)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gradient_footprint(D: PatchDiscriminator, size: int = 160) -> tuple[int, int]:
    """Height and width of the input region that one output patch (the centre one) depends on:
    where the gradient of that logit with respect to the input is non-zero."""
    D.eval()
    for m in D.modules():  # a pure chain of convolutions: unit weights, no norm statistics
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.constant_(m.weight, 0.01)
    x = torch.ones(1, 6, size, size, requires_grad=True)
    out = D(x)
    i, j = out.shape[2] // 2, out.shape[3] // 2
    out[0, 0, i, j].backward()
    touched = (x.grad[0].abs().sum(0) > 0).nonzero()
    return int(touched[:, 0].max() - touched[:, 0].min() + 1), int(touched[:, 1].max() - touched[:, 1].min() + 1)


def test_the_patchgan_with_three_layers_judges_70_by_70_patches():
    D = PatchDiscriminator(6, ndf=8, n_layers=3)
    assert receptive_field(D) == 70
    assert _gradient_footprint(D) == (70, 70)


@pytest.mark.parametrize("n_layers, expected", [(1, 16), (2, 34), (4, 142)])
def test_the_receptive_field_is_computed_from_the_layers_not_looked_up(n_layers, expected):
    D = PatchDiscriminator(6, ndf=4, n_layers=n_layers)
    assert receptive_field(D) == expected
    assert _gradient_footprint(D, size=expected + 96) == (expected, expected)


def test_the_generator_keeps_the_size_and_outputs_tanh_pixels():
    G = UNetGenerator(1, 2, width=4, depth=4, dropout=2)
    y = G(torch.randn(2, 1, 32, 48))
    assert y.shape == (2, 2, 32, 48)
    assert y.abs().max() <= 1.0
    assert sum(isinstance(m, torch.nn.Dropout) for m in G.modules()) == 2


def test_the_discriminator_sees_the_input_and_the_output_together():
    model = Pix2Pix({"pairs": "colorize", "width": 4, "depth": 3, "dropout": 0, "ndf": 4, "n_layers": 2})
    assert channels_for("colorize") == (1, 2)
    assert model.D.net[0].in_channels == 3  # L* and a*b*


def test_the_loss_terms_match_plain_torch_on_tiny_tensors():
    torch.manual_seed(0)
    D = PatchDiscriminator(6, ndf=4, n_layers=1)
    a, b, fake = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    real_logits, fake_logits = D(torch.cat([a, b], 1)), D(torch.cat([a, fake], 1))

    def bce(logits, target):  # the textbook formula, not torch's fused one
        p = torch.sigmoid(logits)
        return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()

    g = generator_losses(D, a, fake, b, "vanilla", lambda_l1=100.0)
    assert torch.allclose(g["g_gan"], bce(fake_logits, 1.0), atol=1e-6)
    assert torch.allclose(g["g_l1"], (fake - b).abs().mean())
    assert torch.allclose(g["loss"], bce(fake_logits, 1.0) + 100.0 * (fake - b).abs().mean(), atol=1e-5)
    d = discriminator_losses(D, a, fake, b, "vanilla")
    assert torch.allclose(d["loss"], 0.5 * (bce(real_logits, 1.0) + bce(fake_logits, 0.0)), atol=1e-6)
    ls = discriminator_losses(D, a, fake, b, "lsgan")
    assert torch.allclose(ls["loss"], 0.5 * (((real_logits - 1) ** 2).mean() + (fake_logits ** 2).mean()), atol=1e-6)
    assert torch.allclose(gan_loss(fake_logits, True, "lsgan"), F.mse_loss(fake_logits, torch.ones_like(fake_logits)))


def test_the_discriminator_loss_does_not_reach_the_generator():
    G = UNetGenerator(3, 3, width=4, depth=2, dropout=0)
    D = PatchDiscriminator(6, ndf=4, n_layers=1)
    a, b = torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16)
    discriminator_losses(D, a, G(a), b, "vanilla")["loss"].backward()
    assert all(p.grad is None for p in G.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
