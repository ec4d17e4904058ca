"""Verification figures: ROC/EER, one-shot accuracy and the scatter's PCA on cases with known answers."""
import numpy as np
import pytest

from engine.eval.verification import one_shot_accuracy, pca_2d, roc, verification_report


def _clusters(ids=6, per=4, spread=0.01, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.eye(ids)
    emb = np.repeat(centres, per, axis=0) + rng.normal(0, spread, (ids * per, ids))
    return emb, np.repeat(np.arange(ids), per)


def test_pca_of_the_live_scatter_matches_scikit_learn():
    from sklearn.decomposition import PCA

    x = np.random.default_rng(3).normal(size=(50, 16)) @ np.diag(np.linspace(3, 0.1, 16))
    ours = pca_2d(x)
    theirs = PCA(n_components=2).fit_transform(x)
    assert np.allclose(ours, theirs, atol=1e-8)


def test_well_separated_identities_are_recognised_in_every_one_shot_episode():
    emb, labels = _clusters()
    assert one_shot_accuracy(emb, labels, ways=5, episodes=50) == 1.0
    # 20-way with 6 identities: as many ways as there are
    assert one_shot_accuracy(emb, labels, ways=20, episodes=50) == 1.0


def test_one_shot_with_a_tau_below_every_distance_recognises_nothing():
    emb, labels = _clusters(spread=0.05)
    assert one_shot_accuracy(emb, labels, ways=5, episodes=50, tau=1e-6) == 0.0


def test_one_shot_accuracy_of_a_case_worked_out_by_hand():
    # identities 0 and 1 are tight pairs far apart; identity 2's two pictures lie 15 apart, each
    # nearer to another identity's picture than to the other: its queries always fail, the
    # others never do. 3-way episodes: the query is of identity 2 a third of the time.
    emb = np.array([[0.0], [0.1], [10.0], [10.1], [5.0], [20.0]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    acc = one_shot_accuracy(emb, labels, ways=3, episodes=3000, seed=1)
    assert acc == pytest.approx(2 / 3, abs=0.03)


def test_roc_of_separated_distances_has_no_error_and_tau_between_them():
    d = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    same = np.array([1, 1, 1, 0, 0, 0], bool)
    r = roc(d, same)
    assert r["eer"] == 0.0 and r["auc"] == 1.0 and r["acc_at_tau"] == 1.0
    assert 0.3 <= r["tau"] < 0.7


def test_eer_by_hand():
    # same: 0.1, 0.4; different: 0.3, 0.9. At tau in [0.3, 0.4): FAR 1/2, FRR 1/2 -> EER 0.5
    r = roc(np.array([0.1, 0.4, 0.3, 0.9]), np.array([1, 1, 0, 0], bool))
    assert r["eer"] == pytest.approx(0.5)
    assert r["auc"] == pytest.approx(0.75)


def test_report_names_every_figure_of_eval():
    emb, labels = _clusters(ids=25, per=3)
    report = verification_report(emb, labels, episodes=40)
    for key in ("eer", "roc_auc", "acc_at_tau", "tau", "oneshot_acc_5way", "oneshot_acc_20way"):
        assert key in report
    assert report["eer"] == 0.0 and report["oneshot_acc_20way"] == 1.0


def test_roc_and_auc_match_scikit_learn_on_random_pairs_with_ties():
    from sklearn.metrics import roc_auc_score, roc_curve as sk_roc_curve

    rng = np.random.default_rng(5)
    same = rng.random(400) < 0.4
    d = np.round(rng.normal(np.where(same, 0.6, 1.0), 0.3), 2)  # rounded: many tied distances
    r = roc(d, same)
    fpr, tpr, _ = sk_roc_curve(same, -d, drop_intermediate=False)
    assert np.allclose(r["fpr"], fpr) and np.allclose(r["tpr"], tpr)
    assert r["auc"] == pytest.approx(roc_auc_score(same, -d))
