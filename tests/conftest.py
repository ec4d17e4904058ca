"""Test set-up: GUI tests run offscreen unless --headed is given."""
import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--headed", action="store_true", help="show GUI windows instead of offscreen")


def pytest_configure(config):
    if not config.getoption("--headed"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch intra-op thread for a test module (use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): on a shared 2-core machine two
    OpenMP threads spin against each other and make tiny models several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
