"""FC layer = 1x1 convolution: a 1x1x1024 map gives 1000 scores, a 2x3x1024 map gives 2x3x1000; the
shipped Lite0 made fully convolutional answers at 224 exactly as the classifier and at 256x288 with
2x3 windows."""
import numpy as np
import pytest
import torch
from torch import nn

from engine.lessons.convolutionalization import (FullyConvolutionalLite0, fc_as_conv, imagenet_names,
                                                 window_boxes)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_1x1x1024_map_becomes_2x3x1000_on_a_bigger_input_with_the_same_numbers():
    torch.manual_seed(0)
    fc = nn.Linear(1024, 1000)
    conv = fc_as_conv(fc)
    small = torch.randn(1, 1024, 1, 1)
    assert tuple(conv(small).shape) == (1, 1000, 1, 1)
    torch.testing.assert_close(conv(small)[0, :, 0, 0], fc(small[0, :, 0, 0]))
    big = torch.randn(1, 1024, 2, 3)
    out = conv(big)
    assert tuple(out.shape[1:]) == (1000, 2, 3)
    for r in range(2):
        for c in range(3):  # every position is the FC layer applied to that position's 1024 values
            torch.testing.assert_close(out[0, :, r, c], fc(big[0, :, r, c]), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def net():
    from engine.models.backbones import efficientnet_lite0

    return FullyConvolutionalLite0(efficientnet_lite0(pretrained=True))


def test_lite0_made_convolutional_gives_the_classifiers_logits_at_224(net):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = net.model(x)
    out = net(x)
    assert tuple(out.shape) == (1, 1000, 1, 1)
    torch.testing.assert_close(out[0, :, 0, 0], expected[0], rtol=1e-4, atol=1e-4)
    assert dict(net.shapes)["7×7 average pool, stride 1"] == (1280, 1, 1)


def test_lite0_on_256x288_gives_2x3x1000_one_prediction_per_224_window(net):
    out = net(torch.randn(1, 3, 256, 288))
    shapes = dict(net.shapes)
    assert shapes["last block (c5)"] == (320, 8, 9)
    assert shapes["7×7 average pool, stride 1"] == (1280, 2, 3)
    assert tuple(out.shape[1:]) == (1000, 2, 3)
    boxes = window_boxes((2, 3), (256, 288), (256, 288))
    np.testing.assert_array_equal(boxes[-1], [64, 32, 288, 256])  # the last window ends at the border


def test_class_names_ship_offline():
    names = imagenet_names()
    assert len(names) == 1000 and names[281] == "tabby" and names[285] == "Egyptian cat"
