"""Test set-up: GUI tests run offscreen unless --headed is given."""
import os


def pytest_addoption(parser):
    parser.addoption("--headed", action="store_true", help="show GUI windows instead of offscreen")


def pytest_configure(config):
    if not config.getoption("--headed"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("MPLBACKEND", "Agg")
