"""Shape operations of the Edit menu, checked on pixels and coordinates (no Qt, no store)."""
import numpy as np
import pytest

from engine.annotations import geometry as geo
from engine.annotations import ops
from engine.annotations.model import Annotation, Box, ImageRecord, MaskRLE, Point, Polygon, Polyline

H, W = 20, 30


def ann(g, **kw) -> Annotation:
    base = {"image_id": 1, "category_id": 7, "id": 5}
    return Annotation(geometry=g, **{**base, **kw})


def square(x, y, s) -> Polygon:
    return Polygon(((x, y), (x + s, y), (x + s, y + s), (x, y + s)))


def mask_of(*slices) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    for ys, xs in slices:
        m[ys, xs] = 1
    return m


def test_merge_is_the_pixel_union_as_one_mask_with_first_category():
    a = ann(Box(0, 0, 4, 4), category_id=3, attributes={"occluded": True})
    b = ann(square(2, 2, 4), category_id=9)
    c = ann(geo.encode_mask(mask_of((slice(10, 12), slice(20, 25)))))
    merged = ops.merge([a, b, c], H, W)
    assert merged.kind == "mask" and merged.id is None
    assert merged.category_id == 3 and merged.attributes == {"occluded": True}
    m = geo.decode_mask(merged.geometry)
    expected = mask_of((slice(0, 4), slice(0, 4)), (slice(2, 6), slice(2, 6)), (slice(10, 12), slice(20, 25)))
    assert np.array_equal(m, expected)


def test_merge_refuses_points_single_shapes_and_mixed_images():
    with pytest.raises(ops.ShapeOpError, match="point"):
        ops.merge([ann(Box(0, 0, 2, 2)), ann(Point(1, 1))], H, W)
    with pytest.raises(ops.ShapeOpError, match="two or more"):
        ops.merge([ann(Box(0, 0, 2, 2))], H, W)
    with pytest.raises(ops.ShapeOpError, match="different images"):
        ops.merge([ann(Box(0, 0, 2, 2)), ann(Box(0, 0, 2, 2)).with_(image_id=2)], H, W)


def test_split_mask_into_components_largest_first():
    m = mask_of((slice(0, 2), slice(0, 2)), (slice(5, 10), slice(5, 10)), (slice(15, 16), slice(28, 29)))
    parts = ops.split(ann(geo.encode_mask(m), score=0.8), H, W)
    assert [p.kind for p in parts] == ["mask"] * 3
    areas = [geo.area(p.geometry) for p in parts]
    assert areas == [25, 4, 1]
    assert all(p.id is None and p.score == 0.8 for p in parts)
    total = sum(geo.decode_mask(p.geometry).astype(int) for p in parts)
    assert np.array_equal(total, m)


def test_split_of_a_single_component_or_box_does_nothing():
    assert ops.split(ann(geo.encode_mask(mask_of((slice(3, 8), slice(3, 8))))), H, W) == []
    assert ops.split(ann(Box(0, 0, 5, 5)), H, W) == []


def test_polygon_to_mask_and_back_keeps_the_pixels_and_holes():
    ring = Polygon(((2, 2), (18, 2), (18, 16), (2, 16)), holes=(((6, 6), (12, 6), (12, 12), (6, 12)),))
    as_mask = ops.to_mask(ann(ring), H, W)
    assert as_mask.kind == "mask" and as_mask.geometry.size == (H, W)
    m = geo.decode_mask(as_mask.geometry)
    assert m.sum() == 16 * 14 - 6 * 6 and m[9, 9] == 0 and m[3, 3] == 1
    polys = ops.to_polygons(as_mask)
    assert len(polys) == 1 and len(polys[0].geometry.holes) == 1
    back = geo.polygon_to_mask(polys[0].geometry, H, W)
    # geometry.mask_to_polygons traces pixel centres, so a half-pixel border is lost: compare by IoU
    iou = (back & m).sum() / (back | m).sum()
    assert iou > 0.75 and back[9, 9] == 0


def test_converting_the_wrong_kind_says_so():
    with pytest.raises(ops.ShapeOpError, match="point"):
        ops.to_mask(ann(Point(1, 2)), H, W)
    with pytest.raises(ops.ShapeOpError, match="not a mask"):
        ops.to_polygons(ann(Box(0, 0, 1, 1)))


def test_duplicate_offsets_by_ten_pixels_and_clips():
    img = ImageRecord(1, "a.png", W, H)
    copies = ops.duplicate([ann(Box(1, 2, 5, 6), locked=True, hidden=True), ann(Box(15, 5, 25, 9))], img)
    assert [c.geometry for c in copies] == [Box(11, 12, 15, 16), Box(25, 15, 30, 19)]
    assert all(c.id is None and not c.locked and not c.hidden for c in copies)


def test_paste_onto_a_smaller_image_clips_every_kind():
    small = ImageRecord(2, "b.png", 10, 8)
    src = [
        ann(Box(5, 5, 20, 20)),
        ann(Point(3, 3)), ann(Point(12, 3)),                      # second point is outside
        ann(square(6, 4, 8)),
        ann(Polyline(((1, 1), (15, 1), (15, 6), (1, 6)))),         # leaves the image and comes back
        ann(geo.encode_mask(mask_of((slice(0, 20), slice(0, 30))))),
        ann(Box(20, 10, 25, 15)),                                  # entirely outside: dropped
    ]
    out = ops.paste(src, small)
    assert all(a.image_id == 2 and a.id is None for a in out)
    kinds = [a.kind for a in out]
    assert kinds == ["box", "point", "polygon", "polyline", "polyline", "mask"]
    assert out[0].geometry == Box(5, 5, 10, 8)
    assert out[1].geometry == Point(3, 3)
    assert geo.area(out[2].geometry) == pytest.approx(4 * 4)
    assert geo.bounds(out[2].geometry) == (6, 4, 10, 8)
    assert out[3].geometry.points == ((1, 1), (10, 1))
    assert out[4].geometry.points == ((10, 6), (1, 6))
    assert out[5].geometry.size == (8, 10) and geo.decode_mask(out[5].geometry).all()


def test_paste_mask_shifted_partly_off_the_image():
    m = mask_of((slice(0, 4), slice(0, 4)))
    target = ImageRecord(3, "c.png", 6, 5)
    (out,) = ops.paste([ann(geo.encode_mask(m))], target, dx=4, dy=3)
    got = geo.decode_mask(out.geometry)
    assert got.shape == (5, 6) and got.sum() == 2 * 2 and got[3:5, 4:6].all()
    assert ops.paste([ann(geo.encode_mask(m))], target, dx=10, dy=0) == []


def test_area_mask_pads_a_mask_from_another_image_size():
    m = np.ones((4, 4), np.uint8)
    got = ops.area_mask(MaskRLE(*geo.encode_mask(m).__dict__.values()), 6, 8)
    assert got.shape == (6, 8) and got.sum() == 16
