"""Device choice: auto prefers cuda, then mps, then cpu; asking for absent hardware is a clear error."""
import random

import numpy as np
import pytest
import torch

from engine import device as dev


def test_auto_picks_cpu_when_no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.pick_device("auto") == torch.device("cpu")
    assert dev.pick_device() == torch.device("cpu")
    assert dev.pick_device("CPU") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.pick_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.pick_device("auto").type == "mps"


def test_absent_cuda_is_a_clear_value_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        dev.pick_device("cuda")


def test_bad_cuda_index_is_a_clear_value_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="must be a number"):
        dev.pick_device("cuda:x")
    with pytest.raises(ValueError, match="only 1 CUDA device"):
        dev.pick_device("cuda:3")
    assert dev.pick_device("cuda:0") == torch.device("cuda:0")


def test_unknown_device_name_is_rejected():
    with pytest.raises(ValueError, match="tpu"):
        dev.pick_device("tpu")


def test_autocast_is_a_no_op_on_cpu():
    with dev.autocast_context(torch.device("cpu")):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_seed_everything_repeats_random_streams():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    dev.seed_everything(123)
    a = draw()
    dev.seed_everything(123)
    b = draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_mixed_precision_on_cuda_bf16_or_fp16_with_loss_scaling(monkeypatch):
    """No GPU here: the choice is checked with CUDA mocked (the autocast object is not entered)."""
    import warnings

    from engine.train.loop import make_grad_scaler

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that the (mocked) CUDA is absent
        ctx = dev.autocast_context(torch.device("cuda"))
        assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == torch.bfloat16
        assert make_grad_scaler(torch.device("cuda")) is None  # bf16 needs no loss scaling
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
        ctx = dev.autocast_context(torch.device("cuda"))
        assert ctx.fast_dtype == torch.float16
        assert isinstance(make_grad_scaler(torch.device("cuda")), torch.amp.GradScaler)
    assert make_grad_scaler(torch.device("cpu")) is None
    assert not isinstance(dev.autocast_context(torch.device("cpu")), torch.autocast)
