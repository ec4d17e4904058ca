"""User-exported YOLO ONNX detectors: both output layouts, letterbox mapping, refusals.

The models are tiny hand-built ONNX graphs whose output is a fixed tensor, so the expected boxes
are known exactly. Input 128x128; the test image is 64 wide x 32 tall, so the letterbox scale is
2 and the image sits 32 px below the top: original = (input - (0, 32)) / 2.
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from engine.infer.detections import Detections, RawCandidates
from engine.infer.onnx_yolo import DetectorLoadError, OnnxYoloDetector, letterbox

IMAGE = np.full((32, 64, 3), 40, np.uint8)


def _to_input(x1, y1, x2, y2):
    """Original-pixel xyxy -> model-input xyxy for IMAGE in a 128x128 input."""
    return [x1 * 2, y1 * 2 + 32, x2 * 2, y2 * 2 + 32]


def _save_model(path, output: np.ndarray, metadata=None, input_shape=(1, 3, 128, 128),
                output_shape=None):
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT,
                                        list(output_shape or output.shape))
    const = helper.make_node("Constant", [], ["fixed"], value=helper.make_tensor(
        "fixed_value", TensorProto.FLOAT, output.shape, output.astype(np.float32).ravel()))
    ident = helper.make_node("Identity", ["fixed"], ["output0"])
    graph = helper.make_graph([const, ident], "fixed_yolo", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _cxcywh(box):
    x1, y1, x2, y2 = _to_input(*box)
    return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]


def _raw_output(n_anchors=12):
    """[1, 4 + 2, A]: cx, cy, w, h rows then two class-score rows; five real anchors, the rest
    empty (score 0), as in a real export where most anchors see nothing."""
    anchors = [  # (original box, class scores)
        ((10, 5, 20, 15), (0.9, 0.1)),    # kept, class 0
        ((10, 5, 20, 16), (0.8, 0.05)),   # IoU 0.91 with the first: suppressed by NMS
        ((10, 5, 20, 15), (0.1, 0.7)),    # same place, class 1: kept (class-wise NMS)
        ((40, 10, 60, 30), (0.1, 0.2)),   # below conf 0.25
        ((40, 10, 60, 30), (0.5, 0.0)),   # kept, class 0
    ]
    cols = [_cxcywh(b) + list(s) for b, s in anchors]
    cols += [[64, 64, 8, 8, 0.0, 0.0]] * (n_anchors - len(cols))
    return np.array(cols, np.float32).T[None]


def test_raw_layout_predict_maps_boxes_back_and_runs_nms(tmp_path):
    path = _save_model(tmp_path / "raw.onnx", _raw_output(),
                       {"names": "{0: 'cat', 1: 'dog'}", "task": "detect", "stride": "32"})
    det = OnnxYoloDetector(path)
    assert det.layout == "raw" and det.input_size == (128, 128)
    assert det.class_names == ["cat", "dog"]
    result = det.predict(IMAGE)
    assert isinstance(result, Detections)
    np.testing.assert_allclose(result.scores, [0.9, 0.7, 0.5], rtol=1e-6)
    assert result.labels.tolist() == [0, 1, 0]
    np.testing.assert_allclose(result.boxes, [[10, 5, 20, 15], [10, 5, 20, 15], [40, 10, 60, 30]],
                               atol=1e-4)
    assert result.class_names == ["cat", "dog"]
    assert det.latency_ms > 0 and set(det.last_timing) == {"preprocess_ms", "inference_ms",
                                                           "postprocess_ms"}
    raw = det.raw_candidates(IMAGE)
    assert isinstance(raw, RawCandidates) and len(raw) == 4  # all above conf, before NMS
    assert len(det.raw_candidates(IMAGE, conf=0.01)) == 5


def test_end_to_end_layout_and_boxes_clipped_to_image(tmp_path):
    rows = np.zeros((1, 4, 6), np.float32)
    rows[0, 0] = _to_input(1, 2, 30, 20) + [0.8, 2]
    rows[0, 1] = _to_input(-5, 10, 70, 31) + [0.6, 0]   # spills out of the image: clipped
    rows[0, 2] = _to_input(0, 0, 5, 5) + [0.1, 1]       # below conf
    path = _save_model(tmp_path / "e2e.onnx", rows)      # no metadata at all
    det = OnnxYoloDetector(path)
    assert det.layout == "end2end"
    result = det.predict(IMAGE)
    assert result.labels.tolist() == [2, 0]
    np.testing.assert_allclose(result.boxes, [[1, 2, 30, 20], [0, 10, 64, 31]], atol=1e-4)
    assert result.class_names == ["class_0", "class_1", "class_2"]


def test_yolov5_layout_multiplies_objectness(tmp_path):
    rows = np.zeros((1, 20, 5 + 3), np.float32)  # [1, anchors, cx cy w h obj + 3 classes]
    rows[0, 0] = _cxcywh((10, 5, 20, 15)) + [0.9, 0.1, 0.8, 0.1]   # score 0.72, class 1
    rows[0, 1] = _cxcywh((10, 5, 20, 15)) + [0.5, 0.1, 0.9, 0.0]   # same box, 0.45: suppressed
    rows[0, 2] = _cxcywh((40, 10, 60, 30)) + [0.4, 1.0, 0.0, 0.0]  # 0.4, class 0
    rows[0, 3] = _cxcywh((40, 10, 60, 30)) + [0.2, 0.0, 0.0, 1.0]  # 0.2 < conf
    det = OnnxYoloDetector(_save_model(tmp_path / "v5.onnx", rows))
    assert det.layout == "yolov5" and len(det.class_names) == 3
    result = det.predict(IMAGE)
    assert result.labels.tolist() == [1, 0]
    np.testing.assert_allclose(result.scores, [0.72, 0.4], rtol=1e-5)
    np.testing.assert_allclose(result.boxes, [[10, 5, 20, 15], [40, 10, 60, 30]], atol=1e-4)


def test_layout_rules_use_the_metadata_class_count():
    layout = OnnxYoloDetector._layout
    assert layout(84, 8400, None) == ("raw", 80)
    assert layout(84, 8400, 80) == ("raw", 80)
    assert layout(300, 6, 80) == ("end2end", 80)
    assert layout(6, 5, 2) == ("raw", 2)           # few anchors, but metadata says 2 classes
    assert layout(25200, 85, None) == ("yolov5", 80)
    assert layout(116, 8400, 80)[0] is None        # segmentation head: 4 + 80 + 32 mask rows


def test_dynamic_shapes_use_metadata_image_size(tmp_path):
    path = _save_model(tmp_path / "dyn.onnx", _raw_output(),
                       {"names": "{0: 'cat', 1: 'dog'}", "imgsz": "[128, 128]"},
                       input_shape=("batch", 3, "height", "width"),
                       output_shape=("batch", 6, "anchors"))
    det = OnnxYoloDetector(path)
    assert det.input_size == (128, 128) and det.layout == "raw"
    assert det.predict(IMAGE).labels.tolist() == [0, 1, 0]


def test_letterbox_pads_grey_and_keeps_aspect():
    image = np.full((32, 64, 3), 200, np.uint8)
    padded, box = letterbox(image, (128, 128))
    assert padded.shape == (128, 128, 3)
    assert box.scale == 2 and (box.pad_x, box.pad_y) == (0, 32)
    assert (padded[:32] == 114).all() and (padded[96:] == 114).all()
    assert (padded[32:96] == 200).all()


def test_not_onnx_and_not_a_detector_are_refused(tmp_path):
    junk = tmp_path / "weights.onnx"
    junk.write_bytes(b"this is not a protobuf at all" * 10)
    with pytest.raises(DetectorLoadError, match=r"weights\.onnx: not a readable ONNX model"):
        OnnxYoloDetector(junk)
    classifier = _save_model(tmp_path / "classifier.onnx", np.zeros((1, 10), np.float32))
    with pytest.raises(DetectorLoadError, match=r"classifier\.onnx: output 'output0' has shape "
                                                r"\[1, 10\]; expected a YOLO detector output"):
        OnnxYoloDetector(classifier)
    seg = _save_model(tmp_path / "seg.onnx", _raw_output(), {"task": "segment"})
    with pytest.raises(DetectorLoadError, match="task 'segment'"):
        OnnxYoloDetector(seg)
    with pytest.raises(DetectorLoadError, match="file not found"):
        OnnxYoloDetector(tmp_path / "missing.onnx")


def test_bad_image_gets_a_clear_message(tmp_path):
    det = OnnxYoloDetector(_save_model(tmp_path / "raw.onnx", _raw_output()))
    assert det.class_names == ["class_0", "class_1"]
    with pytest.raises(ValueError, match=r"image: expected an RGB array"):
        det.predict(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        det.predict(np.zeros((4, 4, 3), np.float32))
