"""Model families are registered by name; the registry lists them and names the known ones on a typo."""
import pytest

from engine.models import registry


def _noop_train(token, store_path, out, config):
    yield from ()


def _spec(name="toy", kind="segmentation"):
    return registry.FamilySpec(
        name=name,
        kind=kind,
        build=lambda config, num_classes: None,
        train=_noop_train,
        predictor=lambda checkpoint_path, device: None,
        cpu_preset={"epochs": 1},
        gpu_preset={"epochs": 50},
        description="a toy family for tests",
    )


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_loaded", False)
    return registry


def test_register_and_get(clean_registry, monkeypatch):
    monkeypatch.setattr(clean_registry, "_FAMILY_MODULES", ())
    spec = clean_registry.register_family(_spec())
    assert clean_registry.get_family("toy") is spec
    assert spec in clean_registry.families()
    assert spec.preset("cuda") == {"epochs": 50} and spec.preset("cpu") == {"epochs": 1}


def test_unknown_name_lists_known_families(clean_registry, monkeypatch):
    monkeypatch.setattr(clean_registry, "_FAMILY_MODULES", ())
    clean_registry.register_family(_spec("alpha"))
    clean_registry.register_family(_spec("beta", "detection"))
    with pytest.raises(ValueError, match=r"unknown model family 'gamma'.*alpha, beta"):
        clean_registry.get_family("gamma")


def test_bad_kind_is_rejected():
    with pytest.raises(ValueError, match="kind 'classification'"):
        _spec(kind="classification")


def test_missing_family_modules_are_skipped(clean_registry, monkeypatch):
    monkeypatch.setattr(clean_registry, "_FAMILY_MODULES", ("engine.models.not_written_yet",))
    assert clean_registry.families() == []


def test_family_module_with_a_broken_import_is_reported(clean_registry, monkeypatch, tmp_path):
    # A module that exists but imports something missing is a bug, not "not written yet".
    pkg = tmp_path / "vb_fake_family_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "broken.py").write_text("import vb_no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(clean_registry, "_FAMILY_MODULES", ("vb_fake_family_pkg.broken",))
    with pytest.raises(ModuleNotFoundError, match="vb_no_such_dependency_xyz"):
        clean_registry.families()


def test_family_module_registers_on_lazy_import(clean_registry, monkeypatch, tmp_path):
    pkg = tmp_path / "vb_fake_family_pkg2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fam.py").write_text(
        "from engine.models.registry import FamilySpec, register_family\n"
        "register_family(FamilySpec('lazy', 'detection', build=lambda c, n: None,\n"
        "    train=lambda token, store_path, out, config: iter(()), predictor=lambda p, d: None))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(clean_registry, "_FAMILY_MODULES", ("vb_fake_family_pkg2.fam",))
    assert [f.name for f in clean_registry.families()] == ["lazy"]
    assert clean_registry.get_family("lazy").kind == "detection"


def test_real_registry_loads_whatever_families_exist():
    # Whatever the other modules register, listing must not fail and every entry must be valid.
    for spec in registry.families():
        assert spec.kind in registry.KINDS and callable(spec.build)
