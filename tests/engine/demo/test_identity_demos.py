"""The demo sets for Siamese models: glyph identities, and galaxies observed more than once."""
import hashlib
from collections import defaultdict

import pytest

from engine.annotations import ProjectStore
from engine.data.identities import identity_items, split_identities
from engine.demo.galaxies import OBSERVATIONS, build_galaxies
from engine.demo.glyphs import build_glyphs


def _digest(folder):
    return hashlib.sha256(b"".join(f.read_bytes() for f in sorted(folder.iterdir()))).hexdigest()


def test_glyphs_are_many_identities_with_ten_renderings_each_split_by_identity(tmp_path):
    project = build_glyphs(tmp_path, n_identities=30, seed=2)
    with ProjectStore(project, readonly=True) as store:
        items, source = identity_items(store)
        assert source == "attribute" and len(items) == 300
        by_id = defaultdict(list)
        for it in items:
            by_id[it.identity].append(it)
        assert len(by_id) == 30 and all(len(v) == 10 for v in by_id.values())
        assert all(it.box is None for it in items)  # the whole image is the item
        parts = split_identities(store, items)
        train, val = {it.identity for it in parts["train"]}, {it.identity for it in parts["val"]}
        assert len(val) == 6 and not train & val
        # an identity's images are all in its split
        splits = {r.id: r.split for r in store.images()}
        assert all(splits[it.image_id] == "val" for it in parts["val"])


def test_glyphs_are_deterministic_for_a_seed(tmp_path):
    build_glyphs(tmp_path / "a", n_identities=5, renderings=3, seed=7)
    build_glyphs(tmp_path / "b", n_identities=5, renderings=3, seed=7)
    build_glyphs(tmp_path / "c", n_identities=5, renderings=3, seed=8)
    a, b, c = (_digest(tmp_path / x / "glyphs") for x in "abc")
    assert a == b != c


@pytest.fixture(scope="module")
def galaxies(tmp_path_factory):
    return build_galaxies(tmp_path_factory.mktemp("galaxies"), n_images=12, seed=1)


def test_each_galaxy_is_observed_several_times_under_one_identity(galaxies):
    with ProjectStore(galaxies, readonly=True) as store:
        items, source = identity_items(store)
        assert source == "attribute"
        splits = {r.id: r.split for r in store.images()}
        images = defaultdict(set)
        for it in items:
            images[it.identity].add(it.image_id)
        assert all(len(v) == OBSERVATIONS for v in images.values())
        assert all(len({splits[i] for i in v}) == 1 for v in images.values())
        # the observations differ (new noise, PSF, rotation), the galaxy's profile does not
        anns = [a for v in store.all_annotations().values() for a in v if "identity" in a.attributes]
        first = {a.attributes["identity"]: a.attributes for a in anns if a.attributes["observation"] == 0}
        for a in anns:
            assert a.attributes["n"] == first[a.attributes["identity"]]["n"]
            assert a.attributes["re"] == first[a.attributes["identity"]]["re"]
    group = [f.read_bytes() for f in sorted((galaxies.parent / "galaxies").iterdir())[:OBSERVATIONS]]
    assert len(set(group)) == OBSERVATIONS
