"""Model families are registered by name: built in, from plugin packages (entry points), or at
run time; the registry names the known ones on a typo and never imports a trainer to list them."""
import sys

import pytest

from engine.models import registry


def _noop_train(token, store_path, out, config):
    yield from ()


def _spec(name="toy", kind="segmentation", **kw):
    return registry.FamilySpec(
        name=name, kind=kind, model=lambda config, num_classes: None, trainer=_noop_train,
        predictor=lambda checkpoint_path, device: None, cpu_preset={"epochs": 1}, gpu_preset={"epochs": 50},
        description="a toy family for tests", **kw)


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_PLUGIN_ERRORS", {})
    monkeypatch.setattr(registry, "_loaded", True)  # no built-ins, no plugins unless a test asks
    return registry


def test_register_and_get(clean_registry):
    spec = clean_registry.register_family(_spec())
    assert clean_registry.get_family("toy") is spec
    assert spec in clean_registry.families()
    assert spec.preset("cuda") == {"epochs": 50} and spec.preset("cpu") == {"epochs": 1}


def test_unknown_name_lists_known_families(clean_registry):
    clean_registry.register_family(_spec("alpha"))
    clean_registry.register_family(_spec("beta", "detection"))
    with pytest.raises(ValueError, match=r"unknown model family 'gamma'.*alpha, beta"):
        clean_registry.get_family("gamma")


def test_every_kind_of_the_platform_is_accepted_and_others_are_refused(clean_registry):
    for kind in ("segmentation", "detection", "instance", "embedding", "image2image", "optimisation"):
        clean_registry.register_family(_spec(f"f_{kind}", kind))
    assert [f.name for f in clean_registry.families(kind="embedding")] == ["f_embedding"]
    with pytest.raises(ValueError, match="kind 'classification'"):
        _spec(kind="classification")


def test_references_are_resolved_only_when_used(clean_registry, monkeypatch, tmp_path):
    (tmp_path / "vb_lazy_family.py").write_text(
        "def build(config, n):\n    return ('built', n)\n"
        "def load(path, device):\n    return ('predictor', path)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = clean_registry.register_family(registry.FamilySpec(
        "lazy", "detection", model="vb_lazy_family:build", trainer="vb_lazy_family:missing",
        predictor="vb_lazy_family:load"))
    assert "vb_lazy_family" not in sys.modules
    assert spec.build({}, 3) == ("built", 3) and spec.predictor("x.ckpt") == ("predictor", "x.ckpt")


def test_a_plugin_package_adds_a_family_and_a_broken_one_is_reported(clean_registry, monkeypatch, tmp_path):
    (tmp_path / "vb_plugin_ok.py").write_text(
        "from engine.models.registry import FamilySpec\n"
        "def families():\n"
        "    return [FamilySpec('plugged', 'embedding', model=lambda c, n: None,\n"
        "        trainer=lambda t, s, o, c: iter(()), predictor=lambda p, d: None)]\n")
    dist = tmp_path / "vb_plugin_ok-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vb-plugin-ok\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[visionbench.families]\nplugged = vb_plugin_ok:families\nbroken = vb_no_such_plugin_module:x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_BUILTIN", "engine.models.registry")  # built-ins not needed here
    assert [f.name for f in clean_registry.families()] == ["plugged"]
    assert "vb_no_such_plugin_module" in clean_registry.plugin_errors()["broken"]


def test_the_built_in_families_are_listed_with_their_options():
    names = {f.name: f for f in registry.families()}
    assert {"unet", "fasterrcnn", "maskrcnn", "yolo"} <= set(names)
    for spec in names.values():
        assert spec.kind in registry.KINDS
        for option in spec.schema("cpu"):
            assert option["type"] in ("int", "float", "bool", "str", "choice")
            assert option["type"] != "choice" or option["default"] in option["choices"]
    assert names["maskrcnn"].metric == "mask_map50"


def test_a_family_declares_its_previews_by_kind_and_an_unknown_kind_is_refused():
    spec = _spec(previews={"embedding": "scatter", "hardest triplets": "image_row"})
    assert list(spec.previews.items()) == [("embedding", "scatter"), ("hardest triplets", "image_row")]
    assert _spec().previews == {}
    with pytest.raises(ValueError, match="preview 'x' has kind 'hologram'"):
        _spec(previews={"x": "hologram"})


def test_the_built_in_families_declare_the_previews_their_trainers_yield():
    from engine.models.registry import get_family

    assert get_family("siamese").previews == {"embedding": "scatter", "hardest triplets": "image_row"}
    for name in ("pix2pix", "colorize"):
        assert get_family(name).previews == {"translations": "image_row", "D on generated": "heatmap",
                                             "D on real": "heatmap"}
    assert get_family("unet").previews == {"heatmaps": "heatmap", "argmax": "class_map", "weight_map": "heatmap"}
