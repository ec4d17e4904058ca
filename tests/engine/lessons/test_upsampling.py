"""The upsampling lesson's numbers are the course material's, and torch agrees with them."""
import numpy as np
import torch
import torch.nn.functional as F

from engine.lessons.upsampling import (KERNEL, POOL_INPUT, UNPOOL_VALUES, checker_amplitude, conv_matrix,
                                       max_pool_with_switches, max_unpool, overlap_add_1d, resize_conv_up,
                                       transposed_conv, transposed_up)

MATERIAL_MATRIX = np.array([
    [1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0, 0],
    [0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0],
    [0, 0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1],
])


def test_the_3x3_kernel_over_a_4x4_input_is_the_4x16_matrix_of_the_material():
    c = conv_matrix(KERNEL, 4, 4)
    assert c.shape == (4, 16)
    np.testing.assert_array_equal(c, MATERIAL_MATRIX)
    np.testing.assert_array_equal(c.T, MATERIAL_MATRIX.T)  # the transposed convolution's 16x4 matrix


def test_the_matrix_computes_the_convolution_and_its_transpose_the_transposed_convolution():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    k = torch.from_numpy(KERNEL)[None, None]
    y = (conv_matrix(KERNEL, 4, 4) @ x.ravel()).reshape(2, 2)
    np.testing.assert_allclose(y, F.conv2d(torch.from_numpy(x)[None, None], k)[0, 0].numpy())
    back = transposed_conv(y, KERNEL)
    np.testing.assert_allclose(back, F.conv_transpose2d(torch.from_numpy(y)[None, None], k)[0, 0].numpy())


def test_one_dimensional_transposed_convolution_is_overlap_and_add():
    copies, out = overlap_add_1d([2, 3], [1, 4, 1], stride=2)
    np.testing.assert_array_equal(copies, [[2, 8, 2, 0, 0], [0, 0, 3, 12, 3]])
    np.testing.assert_array_equal(out, [2, 8, 5, 12, 3])  # the middle cell receives both copies
    torch_out = F.conv_transpose1d(torch.tensor([[[2.0, 3.0]]]), torch.tensor([[[1.0, 4.0, 1.0]]]), stride=2)
    np.testing.assert_array_equal(out, torch_out[0, 0].numpy())


def test_max_pooling_remembers_the_switches_and_unpooling_puts_values_back_there():
    pooled, switches = max_pool_with_switches(POOL_INPUT)
    np.testing.assert_array_equal(pooled, [[5, 6], [7, 8]])
    np.testing.assert_array_equal(switches, [[5, 2], [12, 15]])  # flat positions of 5, 6, 7, 8
    np.testing.assert_array_equal(max_unpool(UNPOOL_VALUES, switches, (4, 4)),
                                  [[0, 0, 2, 0], [0, 1, 0, 0], [0, 0, 0, 0], [3, 0, 0, 4]])


def test_stride_2_size_3_transposed_convolution_makes_a_checkerboard_and_resize_then_convolve_does_not():
    flat = np.ones((12, 12), np.float32)
    up = transposed_up(flat)
    np.testing.assert_array_equal(up[4:8, 4:8], [[1, 2, 1, 2], [2, 4, 2, 4], [1, 2, 1, 2], [2, 4, 2, 4]])
    assert checker_amplitude(up) == 3.0
    assert checker_amplitude(resize_conv_up(flat)) == 0.0
