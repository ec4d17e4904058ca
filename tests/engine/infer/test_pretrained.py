"""Pretrained COCO detectors: the catalogue comes from torchvision, the one download is checked
like torch.hub's, and a file the user brings is checked the same way. The download is tested
against a server on 127.0.0.1: nothing here touches the internet."""
import dataclasses
import socket

import pytest
import torch

from engine.infer import pretrained
from engine.infer.detector_api import DetectorLoadError, load_detector
from engine.infer.pretrained import DownloadError, add_weights_file, catalogue, download_job, find_weights
from engine.infer.views_api import torchvision_cache_files
from engine.jobs import Job, Progress, run_job_sync
from tests.engine.infer.loopback import LoopbackServer, hashed_name

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def _run(url, dest, cancel_after=None):
    events = []
    job = Job("get", download_job, url=url, dest_dir=str(dest), offline="Use Add from file…")

    def on_event(event):
        events.append(event)
        if cancel_after is not None and len(events) >= cancel_after:
            job.token.cancel()
    return run_job_sync(job, on_event), events


def test_the_catalogue_reads_urls_sizes_and_coco_map_from_torchvision():
    import torchvision.models.detection as det

    models = {m.arch: m for m in catalogue()}
    assert set(models) == {"fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn",
                           "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn",
                           "maskrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2",
                           "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large"}
    mask = models["maskrcnn_resnet50_fpn_v2"]
    weights = det.MaskRCNN_ResNet50_FPN_V2_Weights.DEFAULT
    assert mask.url == weights.url and mask.num_params == weights.meta["num_params"]
    assert mask.box_map == weights.meta["_metrics"]["COCO-val2017"]["box_map"] and mask.has_masks
    assert models["fasterrcnn_resnet50_fpn"].mask_map is None
    assert mask.file_name.startswith("maskrcnn_resnet50_fpn_v2_coco-") and len(mask.hash_prefix) >= 8
    assert mask.hash_prefix in mask.file_name and "BSD" in mask.licence
    assert pretrained.HASH_REGEX.pattern == torch.hub.HASH_REGEX.pattern  # torch.hub's rule, copied


def test_a_good_download_reports_progress_and_lands_in_the_folder(tmp_path):
    name = hashed_name("fasterrcnn_mobilenet_v3_large_320_fpn", PAYLOAD)
    with LoopbackServer({f"/models/{name}": PAYLOAD}) as server:
        outcome, events = _run(server.url(f"/models/{name}"), tmp_path / "hub")
    assert outcome.state == "finished", outcome.error
    assert (tmp_path / "hub" / name).read_bytes() == PAYLOAD
    assert outcome.result["path"] == str(tmp_path / "hub" / name)
    steps = [e for e in events if isinstance(e, Progress) and e.total == len(PAYLOAD)]
    assert len(steps) >= 4 and steps[-1].step == len(PAYLOAD)
    assert [e.step for e in steps] == sorted(e.step for e in steps)
    assert list((tmp_path / "hub").iterdir()) == [tmp_path / "hub" / name]  # no .partial left


def test_a_wrong_hash_is_refused_and_the_partial_file_removed(tmp_path):
    name = hashed_name("fasterrcnn_resnet50_fpn_coco", PAYLOAD, good=False)
    with LoopbackServer({f"/models/{name}": PAYLOAD}) as server:
        outcome, _ = _run(server.url(f"/models/{name}"), tmp_path)
    assert outcome.state == "failed"
    assert "SHA-256" in outcome.error and "refused" in outcome.error
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_the_download_and_leaves_nothing(tmp_path):
    name = hashed_name("fasterrcnn_resnet50_fpn_coco", PAYLOAD * 4)
    with LoopbackServer({f"/models/{name}": PAYLOAD * 4}, delay=0.01) as server:
        outcome, events = _run(server.url(f"/models/{name}"), tmp_path, cancel_after=3)
    assert outcome.state == "cancelled"
    assert 3 <= len(events) < 10
    assert list(tmp_path.iterdir()) == []


def test_without_network_the_message_is_plain_and_names_the_offline_way(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome, _ = _run(f"http://127.0.0.1:{port}/models/x-0123abcd.pth", tmp_path)
    assert outcome.state == "failed"
    assert "connection was refused" in outcome.error and "Use Add from file…" in outcome.error

    def no_dns(*args, **kwargs):
        raise socket.gaierror(-3, "Temporary failure in name resolution")
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    outcome, _ = _run("https://download.pytorch.org/models/x-0123abcd.pth", tmp_path)
    assert "download.pytorch.org could not be resolved (no network or no DNS)" in outcome.error
    assert "Use Add from file…" in outcome.error
    assert list(tmp_path.iterdir()) == []


def test_a_missing_file_on_the_server_is_reported(tmp_path):
    with LoopbackServer({}) as server:
        outcome, _ = _run(server.url("/models/x-0123abcd.pth"), tmp_path)
    assert "HTTP 404" in outcome.error


def test_a_state_dict_with_wrong_keys_is_refused_naming_the_file(tmp_path):
    model = pretrained.model_by_arch("fasterrcnn_mobilenet_v3_large_320_fpn")
    wrong = tmp_path / "from a colleague.pth"
    torch.save({"backbone.conv.weight": torch.zeros(3)}, wrong)
    with pytest.raises(DetectorLoadError) as err:
        add_weights_file(wrong, model, tmp_path / "models")
    assert str(wrong) in str(err.value) and "keys do not fit" in str(err.value)
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(DetectorLoadError, match="junk.pth: not a readable PyTorch state dict"):
        add_weights_file(tmp_path / "junk.pth", model, tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_a_brought_file_is_checked_against_the_published_hash_then_copied(tmp_path, monkeypatch):
    import torchvision.models.detection as det

    arch = "fasterrcnn_mobilenet_v3_large_320_fpn"
    src = tmp_path / "usb stick.pth"
    torch.manual_seed(0)
    torch.save(det.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None).state_dict(), src)
    published = pretrained.model_by_arch(arch)
    with pytest.raises(DownloadError, match="usb stick.pth: its SHA-256 begins"):
        add_weights_file(src, published, tmp_path / "models")  # right keys, not torchvision's file
    assert not (tmp_path / "models" / published.file_name).exists()

    # the same file as if torchvision had published it: copied under the published name
    ours = dataclasses.replace(published, url="https://example.invalid/" + hashed_name(arch, src.read_bytes()))
    landed = add_weights_file(src, ours, tmp_path / "models")
    assert landed == tmp_path / "models" / ours.file_name and landed.read_bytes() == src.read_bytes()
    assert find_weights(ours, tmp_path / "models") == landed
    # the views list it and the detector loads from the model folder by name
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    assert torchvision_cache_files(tmp_path / "models") == [landed]
    monkeypatch.setenv("VISIONBENCH_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setattr("engine.infer.detector_api.torchvision_file_name", lambda a: ours.file_name)
    predictor = load_detector(arch)
    assert len(predictor.class_names) == 90 and predictor.class_names[0] == "person"


def test_pre_label_uses_a_coco_detector_from_the_model_folder_with_cocos_names(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from engine.annotations import ProjectStore
    from engine.assist.prelabel import prelabel_job
    from tests.engine.infer.coco_weights import write_test_coco_weights

    weights = write_test_coco_weights(tmp_path / "models")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    assert torchvision_cache_files(tmp_path / "models") == [weights]
    store = ProjectStore.create(tmp_path / "p.vbproj")
    person = store.add_category("person").id
    store.add_category("rocket")  # not a COCO class: the detector simply never proposes it
    Image.fromarray(np.full((96, 128, 3), 127, np.uint8)).save(tmp_path / "street.png")
    image = store.add_image(tmp_path / "street.png")
    store.close()
    got = []
    job = Job("pre-label", prelabel_job, checkpoint=str(weights), project=str(tmp_path / "p.vbproj"),
              image_ids=[image.id], score_threshold=0.3, device="cpu",
              sink=type("Sink", (), {"put": lambda self, item: got.append(item)})())
    outcome = run_job_sync(job)
    assert outcome.state == "finished", outcome.error
    proposals = [a for _, anns in got for a in anns]
    assert proposals and {a.category_id for a in proposals} == {person}
    assert outcome.result["source"].startswith("fasterrcnn_mobilenet_v3_large_320_fpn:")


def test_the_command_line_finds_a_coco_detector_by_name_in_the_model_folder(tmp_path, monkeypatch, capsys):
    import json

    import numpy as np
    from PIL import Image

    from engine import cli
    from engine.annotations import ProjectStore
    from tests.engine.infer.coco_weights import write_test_coco_weights

    store = ProjectStore.create(tmp_path / "p.vbproj")
    store.add_category("person")
    Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(tmp_path / "a.png")
    store.add_image(tmp_path / "a.png")
    store.close()
    arch = "fasterrcnn_mobilenet_v3_large_320_fpn"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_torch_home" / "hub"))
    assert cli.main(["predict", arch, "--project", str(tmp_path / "p.vbproj"), "--store", "none"]) == 2
    err = capsys.readouterr().err
    assert arch in err and "Models > Pretrained models" in err and "fasterrcnn_mobilenet_v3_large_320_fpn-" in err

    write_test_coco_weights(tmp_path / "models", arch)
    monkeypatch.setenv("VISIONBENCH_MODEL_DIR", str(tmp_path / "models"))
    assert cli.main(["predict", arch, "--project", str(tmp_path / "p.vbproj"), "--store", "none",
                     "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 1 and summary["store"] == "none"


def test_the_download_is_the_only_network_code_in_the_product():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    needles = ("urlopen", "download_url_to_file", "load_state_dict_from_url", "http.client", "import requests",
               "urllib.request", "socket.create_connection")
    found = sorted({f"{p.relative_to(root)}: {n}" for folder in ("engine", "app", "benchmarks")
                    for p in (root / folder).rglob("*.py") for n in needles if n in p.read_text(encoding="utf-8")})
    assert {f.split(":")[0] for f in found} == {"engine/infer/pretrained.py"}, found


@pytest.mark.parametrize("arch", sorted(pretrained.TITLES))
def test_every_listed_architecture_can_check_a_file_against_its_keys(arch, tmp_path):
    keys = pretrained._expected_keys(arch)  # built on the meta device: no memory, no weights
    assert len(keys) > 100 and all(isinstance(k, str) for k in keys)
    partial = tmp_path / "half.pth"
    torch.save({k: torch.zeros(1) for k in sorted(keys)[: len(keys) // 2]}, partial)
    with pytest.raises(DetectorLoadError, match=r"half.pth: not the weights of .* missing"):
        pretrained.check_state_dict(partial, arch)
