"""Selective search written here (opencv-contrib cannot sit beside the headless wheel) finds drawn
objects; sliding windows and recall at IoU 0.5 are counted as the lesson says."""
import numpy as np

from engine.lessons.proposals import best_matches, recall, sliding_windows
from engine.lessons.selective_search import diversified_search, selective_search, similarity, unique_boxes


def _two_objects():
    img = np.full((120, 160, 3), 30, np.uint8)
    img[20:60, 20:70] = (200, 40, 40)
    img[70:110, 90:150] = (40, 200, 40)
    return img, np.array([[20, 20, 70, 60], [90, 70, 150, 110]], np.float32)


def test_selective_search_merges_until_one_region_and_every_region_is_a_proposal():
    img, _ = _two_objects()
    h = selective_search(img, min_size=20)
    k = h.initial_count
    assert len(h.boxes) == 2 * k - 1  # k initial regions, k - 1 merges
    assert len(h.merges) == k - 1
    np.testing.assert_array_equal(h.boxes[-1], [0, 0, 160, 120])  # the last merge is the whole image


def test_selective_search_finds_both_objects_exactly():
    img, truths = _two_objects()
    best, _ = best_matches(selective_search(img, min_size=20).boxes, truths)
    assert (best == 1.0).all()
    assert recall(diversified_search(img, min_size=20), truths) == 1.0


def test_similar_small_neighbours_are_more_similar_than_different_ones():
    from engine.lessons.selective_search import Region

    hist = np.zeros(75)
    hist[3] = 1
    other = np.zeros(75)
    other[40] = 1
    tex = np.full(240, 1 / 240)
    a = Region(10, (0, 0, 5, 2), hist, tex)
    b = Region(10, (5, 0, 10, 2), hist, tex)
    c = Region(10, (5, 0, 10, 2), other, tex)
    assert similarity(a, b, 100) > similarity(a, c, 100)


def test_unique_boxes_drops_repeats_and_tiny_boxes_in_order():
    boxes = np.array([[0, 0, 50, 50], [1, 1, 3, 3], [0, 0, 50, 50], [10, 10, 40, 40]], np.float32)
    np.testing.assert_array_equal(unique_boxes(boxes), [[0, 0, 50, 50], [10, 10, 40, 40]])


def test_sliding_windows_cover_the_image_at_every_size_and_recall_counts_objects():
    windows = sliding_windows((120, 160), sizes=(64,), ratios=(1.0,))
    assert windows[:, [0, 1]].min() == 0 and windows[:, 2].max() == 160 and windows[:, 3].max() == 120
    assert len(windows) == len(np.unique(windows, axis=0))
    truths = np.array([[0, 0, 64, 64], [100, 100, 104, 104]], np.float32)
    assert recall(windows, truths) == 0.5  # the tiny object has no window of its size
    assert np.isnan(recall(windows, np.zeros((0, 4))))
