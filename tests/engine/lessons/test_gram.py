"""The Gram matrix keeps what fires together and forgets where: shuffling tiles moves the features,
hardly the Gram matrix of an early layer."""
import numpy as np
import pytest
import torch
from skimage import data

from engine.jobs import Job, run_job_sync
from engine.lessons.base import make_input
from engine.lessons.gram import GramLesson, normalised_gram, shuffle_tiles

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_normalised_gram_is_f_ft_over_positions():
    f = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    flat = f.reshape(2, 12).double().numpy()
    np.testing.assert_allclose(normalised_gram(f), flat @ flat.T / 12, rtol=1e-6)


def test_shuffled_tiles_keep_every_pixel():
    img = np.arange(64 * 96 * 3, dtype=np.uint32).reshape(64, 96, 3).astype(np.uint8)
    out = shuffle_tiles(img, tile=32)
    assert not np.array_equal(out, img)
    assert sorted(map(bytes, out.reshape(-1, 3))) == sorted(map(bytes, img.reshape(-1, 3)))


def test_the_gram_matrix_forgets_where_the_features_do_not():
    lesson = GramLesson()
    data_in = make_input(data.chelsea(), max_side=256)
    assert run_job_sync(Job("gram", lesson.prepare, data=data_in)).state == "finished"
    gram_change, feature_change = lesson.changes["stem"]
    assert gram_change < 0.05 and feature_change > 0.3
    assert "Gram matrix" in lesson.steps[-1].caption and lesson.step_count == len(lesson.changes) + 1
