"""The tiny U-Net settings shared by the U-Net training tests and the Train panel's tests.

A plain 2-level encoder, width 8, 32 px crops: a step takes milliseconds on the CPU, so a test
can train a few epochs and still see previews, metrics and checkpoints.
"""

TINY_UNET = {"encoder": "plain", "loss": "wce", "depth": 2, "width": 8, "crop": 32, "batch_size": 4,
             "preview_every": 2, "lr": 1e-2}
