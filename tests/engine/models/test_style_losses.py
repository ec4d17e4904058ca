"""The quantities of style transfer, checked by hand and against plain torch: Gram matrices, the
style loss with its 1/(4 N² M²), the content loss, and the refusal of weights that are not VGG-19."""
import numpy as np
import pytest
import torch
from torch import nn

from engine.annotations.errors import BadInput
from engine.models.style import (FeatureNetwork, PerceptualLoss, gram_matrix, load_vgg19_state_dict,
                                 style_layer_loss, vgg_feature_shapes)

# the losses are compared as numbers while their graph is alive (the objective is built to be
# differentiated); torch's note about converting such a tensor is expected here
pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True:UserWarning")]


def test_gram_matrix_of_two_channels_over_three_positions_matches_a_hand_computation():
    # channel 0 = (1, 2, 3), channel 1 = (0, 1, -1) over a 1 x 3 map
    f = torch.tensor([[[1.0, 2.0, 3.0]], [[0.0, 1.0, -1.0]]])
    g = gram_matrix(f)
    # G00 = 1+4+9, G01 = 0+2-3, G11 = 0+1+1
    assert torch.equal(g, torch.tensor([[14.0, -1.0], [-1.0, 2.0]]))
    assert gram_matrix(f[None]).shape == (1, 2, 2)


def test_style_layer_loss_is_the_squared_gram_difference_over_4_n2_m2():
    f = torch.tensor([[[1.0, 2.0, 3.0]], [[0.0, 1.0, -1.0]]])
    target = torch.tensor([[10.0, 0.0], [0.0, 4.0]])  # a style image's Gram, also over 3 positions
    loss = style_layer_loss(gram_matrix(f), target / 3, channels=2, positions=3)
    # (14-10)² + 2·(-1-0)² + (2-4)² = 16 + 2 + 4 = 22, over 4 · 2² · 3² = 144
    assert float(loss) == pytest.approx(22 / 144)


def test_a_style_image_of_another_size_is_compared_per_position():
    """The style Gram is scaled to the picture's positions: the same texture at twice the area
    has zero style loss."""
    f = torch.rand(3, 4, 4)
    tiled = torch.cat([f, f], dim=-1)  # same statistics, twice the positions
    target = gram_matrix(tiled) / tiled[0].numel()
    assert float(style_layer_loss(gram_matrix(f), target, 3, 16)) == pytest.approx(0.0, abs=1e-9)


class TinyNet(FeatureNetwork):
    """Two conv layers: enough to compare our losses with a reference written in plain torch."""

    name = "tiny"
    layers = ("a", "b")

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 5, 3, stride=2, padding=1)

    def forward(self, images, names):
        a = torch.relu(self.a(images))
        b = torch.relu(self.b(a))
        return {n: {"a": a, "b": b}[n] for n in names}


def reference_losses(net, picture, content, style, alpha, beta, weights):
    """Gatys' formulas written out with einsum, images of the same size."""
    def feats(x):
        a = torch.relu(net.a(x))
        return {"a": a, "b": torch.relu(net.b(a))}

    fp, fc, fs = feats(picture), feats(content), feats(style)
    content_loss = 0.5 * ((fp["b"] - fc["b"]) ** 2).sum()
    style_loss = 0.0
    for name, w in zip(("a", "b"), weights):
        n = fp[name].shape[1]
        m = fp[name].shape[2] * fp[name].shape[3]
        g = torch.einsum("ik,jk->ij", fp[name][0].reshape(n, m), fp[name][0].reshape(n, m))
        a = torch.einsum("ik,jk->ij", fs[name][0].reshape(n, m), fs[name][0].reshape(n, m))
        style_loss = style_loss + w * ((g - a) ** 2).sum() / (4 * n ** 2 * m ** 2)
    return content_loss, style_loss, alpha * content_loss + beta * style_loss


def test_content_and_style_losses_match_a_plain_torch_reference_on_a_tiny_network():
    net = TinyNet()
    g = torch.Generator().manual_seed(1)
    content, style, picture = (torch.rand(1, 3, 12, 12, generator=g) for _ in range(3))
    objective = PerceptualLoss(net, "b", ["a", "b"], [0.3, 0.7], alpha=2.0, beta=50.0, tv_weight=0.0)
    objective.set_style(style)
    objective.set_content(content)
    with torch.no_grad():
        terms, grams = objective(picture)
        c_ref, s_ref, total_ref = reference_losses(net, picture, content, style, 2.0, 50.0, [0.3, 0.7])
    assert float(terms["content"]) == pytest.approx(float(c_ref), rel=1e-5)
    assert float(terms["style"]) == pytest.approx(float(s_ref), rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(float(total_ref), rel=1e-5)
    assert float(terms["style/a"] + terms["style/b"]) == pytest.approx(float(s_ref), rel=1e-5)
    assert grams["b"].shape == (1, 5, 5)
    # the picture equal to the content image has no content loss
    with torch.no_grad():
        terms, _ = objective(content)
    assert float(terms["content"]) == 0.0


def test_balance_makes_every_style_layer_start_at_its_weight_and_the_content_loss_relative():
    """Raw layer losses differ by orders of magnitude; after balancing at the start picture each
    weighted layer term equals its weight there, and α is divided by the content energy ½ Σ P²."""
    net = TinyNet()
    g = torch.Generator().manual_seed(2)
    content, style = (torch.rand(1, 3, 12, 12, generator=g) for _ in range(2))
    objective = PerceptualLoss(net, "b", ["a", "b"], [0.3, 0.7], alpha=2.0, beta=50.0)
    objective.set_style(style)
    objective.set_content(content)
    raw_terms, _ = objective(content)
    raw = objective.balance(content)
    assert raw["a"] == pytest.approx(float(raw_terms["style/a"]) / 0.3, rel=1e-5)
    terms, _ = objective(content)
    assert float(terms["style/a"]) == pytest.approx(0.3, rel=1e-5)
    assert float(terms["style/b"]) == pytest.approx(0.7, rel=1e-5)
    target = net(content, ["b"])["b"]
    assert objective.alpha == pytest.approx(2.0 / (0.5 * float((target ** 2).sum())), rel=1e-5)
    # a picture twice as far from the content features costs four times the relative content loss
    shifted = PerceptualLoss(net, "b", ["a"], alpha=1.0, beta=0.0)
    shifted.set_style(style)
    shifted.set_content(content)
    shifted.balance(content)
    terms, _ = shifted(style)
    assert float(terms["loss"]) == pytest.approx(float(terms["content"]) / raw["content_energy"], rel=1e-5)


def test_the_rgb_layer_is_the_pixels_so_its_gram_is_the_pictures_colour_moments():
    from engine.models.style import Lite0Features

    net = Lite0Features(pretrained=False)
    pixels = torch.rand(1, 3, 32, 32)
    out = net(pixels, ["rgb", "stem"])
    assert torch.equal(out["rgb"], pixels) and out["stem"].shape[1] == 32
    assert net(pixels, ["rgb"]).keys() == {"rgb"}
    moments = torch.einsum("chw,dhw->cd", pixels[0], pixels[0])
    assert torch.allclose(gram_matrix(out["rgb"])[0], moments, rtol=1e-5)


def test_unknown_layers_and_mismatched_weights_are_refused_naming_the_field():
    with pytest.raises(BadInput, match="style_layers.*unknown layer conv9"):
        PerceptualLoss(TinyNet(), "b", ["conv9"])
    with pytest.raises(BadInput, match="style_weights"):
        PerceptualLoss(TinyNet(), "b", ["a", "b"], [1.0])


def test_a_state_dict_that_is_not_vgg19_is_refused_with_a_message_naming_the_file(tmp_path):
    wrong_keys = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.bias": torch.zeros(1000)}, wrong_keys)
    with pytest.raises(BadInput) as info:
        load_vgg19_state_dict(wrong_keys)
    assert str(wrong_keys) in str(info.value) and "not VGG-19" in str(info.value)

    vgg16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
    vgg16_file = tmp_path / "vgg16.pth"  # the right names for the first layers, the wrong network
    torch.save({k: torch.zeros(shape) for k, shape in vgg_feature_shapes(vgg16).items()}, vgg16_file)
    with pytest.raises(BadInput, match="vgg16.pth.*not VGG-19"):
        load_vgg19_state_dict(vgg16_file)

    garbage = tmp_path / "notes.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(BadInput, match="notes.pth.*vgg19 weights"):
        load_vgg19_state_dict(garbage)


def test_a_real_vgg19_layout_loads_and_gives_the_papers_layers(tmp_path):
    from engine.models.style import feature_network

    path = tmp_path / "vgg19-dcbb9e9d.pth"
    g = torch.Generator().manual_seed(0)
    torch.save({k: torch.randn(shape, generator=g) * 0.05 for k, shape in vgg_feature_shapes().items()}, path)
    net = feature_network("vgg19", path)
    assert net.name == "vgg19" and str(path) in net.describe()
    out = net(torch.rand(1, 3, 32, 32), ["conv1_1", "conv3_1"])
    assert out["conv1_1"].shape == (1, 64, 32, 32) and out["conv3_1"].shape == (1, 256, 8, 8)
    assert np.all(out["conv1_1"].numpy() >= 0)  # after the ReLU, as the paper's layers are
