from __future__ import annotations

import json

import numpy as np
import pytest

from engine.training.clustering import cluster_embeddings, cluster_examples, cosine_kmeans, load_result
from engine.training.examples import TrainingExample


def _blobs(k: int = 3, per: int = 30, d: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    dirs = np.linalg.qr(rng.normal(size=(d, d)))[0][:k]  # orthogonal directions
    xs, ys = [], []
    for j in range(k):
        # different norms per point: cosine clustering must ignore them
        pts = dirs[j] + 0.15 * rng.normal(size=(per, d))
        pts *= rng.uniform(0.5, 5.0, size=(per, 1))
        xs.append(pts)
        ys += [j] * per
    return np.concatenate(xs).astype(np.float32), np.array(ys)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    # a bijection between labels exists
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_recovers_separable_clusters_with_given_k():
    x, y = _blobs()
    labels, cent = cosine_kmeans(x, 3)
    assert _same_partition(labels, y)
    assert np.allclose(np.linalg.norm(cent, axis=1), 1.0, atol=1e-5)


def test_auto_k_by_silhouette_finds_true_k():
    x, y = _blobs(k=4, per=20)
    res = cluster_embeddings(x, None, k_max=7)
    assert res.k == 4
    assert _same_partition(res.labels, y)
    assert res.points.shape == (len(x), 2)
    assert sorted(res.sizes) == [20, 20, 20, 20]
    assert res.silhouette is not None and res.silhouette > 0.5


class _FakeEncoder:
    """Deterministic encoder: one direction per keyword, to test the example pipeline."""

    name = "kw"
    dim = 3

    def encode(self, texts):
        keys = ["sort", "graph", "string"]
        return np.array([[1.0 if k in t else 0.05 for k in keys] for t in texts], dtype=np.float32)


def test_cluster_examples_writes_the_tui_contract(tmp_path):
    exs = [TrainingExample("t2s", f"{kw} problem {i}", "code") for kw in ("sort", "graph", "string") for i in range(6)]
    d = cluster_examples(exs, _FakeEncoder(), k=3, out_dir=tmp_path)
    on_disk = json.loads((tmp_path / "clusters.json").read_text())
    assert on_disk == load_result(tmp_path)
    assert d["k"] == 3 and sorted(d["sizes"]) == [6, 6, 6]
    assert len(d["points"]) == len(d["labels"]) == 18
    assert set(d["samples"]) == {"0", "1", "2"}
    for texts in d["samples"].values():
        kws = {t.split()[0] for t in texts}
        assert len(kws) == 1  # each cluster's samples share one keyword
    assert on_disk["k"] == 3


def test_too_few_examples_is_a_user_error():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError):
        cosine_kmeans(np.eye(2, dtype=np.float32), 3)
