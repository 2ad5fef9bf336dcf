"""Disentangle the training data (paper eq. 12): cosine k-means over example encodings.

    minimise_c  sum_k sum_{i in C_k} cosine_distance(e_i, mu_k),   mu_k = mean{e_i | i in C_k}

scikit-learn's k-means on L2-normalised vectors gives the start (k-means++ restarts);
a few spherical refinement rounds then assign by cosine to the mean centroids exactly as
eq. 12 states, which plain Euclidean k-means only approximates when centroid norms differ.
K is given or chosen by the cosine silhouette. A 2-D PCA projection is kept for the
TUI's cluster view.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ConfigError

RESULT_FILE = "clusters.json"


@dataclass
class ClusterResult:
    k: int
    labels: np.ndarray  # (n,) int
    centroids: np.ndarray  # (k, d) unit vectors (directions of mu_k)
    points: np.ndarray  # (n, 2) PCA projection
    silhouette: float | None
    scores: dict[int, float] = field(default_factory=dict)  # silhouette per K tried

    @property
    def sizes(self) -> list[int]:
        return np.bincount(self.labels, minlength=self.k).tolist()


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_kmeans(
    x: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and unit centroids minimising eq. 12 (locally)."""
    from sklearn.cluster import KMeans

    x = _unit(x)
    n = len(x)
    if not 1 <= k <= n:
        raise ConfigError(f"cannot make {k} clusters from {n} examples")
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
    labels = km.labels_.astype(np.int64)
    for _ in range(max_iter):
        cent = np.stack([x[labels == j].mean(0) if (labels == j).any() else km.cluster_centers_[j] for j in range(k)])
        cent = _unit(cent)
        new = (x @ cent.T).argmax(1)
        if np.array_equal(new, labels):
            break
        labels = new
    cent = _unit(np.stack([x[labels == j].mean(0) if (labels == j).any() else cent[j] for j in range(k)]))
    return labels, cent.astype(np.float32)


def choose_k(x: np.ndarray, k_min: int = 2, k_max: int = 8, *, seed: int = 0) -> tuple[int, dict[int, float]]:
    """K with the best cosine silhouette in [k_min, k_max]."""
    from sklearn.metrics import silhouette_score

    n = len(x)
    k_max = min(k_max, n - 1)
    if k_max < k_min:
        raise ConfigError(f"need at least {k_min + 1} examples to choose K automatically (have {n})")
    scores: dict[int, float] = {}
    for k in range(k_min, k_max + 1):
        labels, _ = cosine_kmeans(x, k, seed=seed)
        if len(set(labels.tolist())) < 2:
            continue
        scores[k] = float(silhouette_score(x, labels, metric="cosine"))
    if not scores:
        raise ConfigError("could not find two non-empty clusters in the data")
    return max(scores, key=scores.__getitem__), scores


def project_2d(x: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    x = _unit(x)
    if len(x) < 2:
        return np.zeros((len(x), 2), dtype=np.float32)
    comps = min(2, x.shape[1], len(x))
    p = PCA(n_components=comps, random_state=0).fit_transform(x)
    if comps < 2:
        p = np.concatenate([p, np.zeros((len(p), 2 - comps))], axis=1)
    return p.astype(np.float32)


def cluster_embeddings(x: np.ndarray, k: int | None = None, *, k_max: int = 8, seed: int = 0) -> ClusterResult:
    """Cluster encodings; ``k=None`` chooses K by silhouette."""
    from sklearn.metrics import silhouette_score

    x = np.asarray(x, dtype=np.float32)
    scores: dict[int, float] = {}
    if k is None:
        k, scores = choose_k(x, 2, k_max, seed=seed)
    labels, cent = cosine_kmeans(x, k, seed=seed)
    sil = None
    if 1 < len(set(labels.tolist())) < len(x):
        sil = float(silhouette_score(x, labels, metric="cosine"))
    return ClusterResult(k=k, labels=labels, centroids=cent, points=project_2d(x), silhouette=sil, scores=scores)


def result_dict(
    res: ClusterResult,
    texts: Sequence[str],
    *,
    n_samples: int = 5,
    sample_chars: int = 400,
    encoder: str = "",
    embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """The JSON the job stores and the TUI's cluster view reads.

    ``samples`` are the members nearest each centroid (most typical first) when the
    embeddings are given, else the first members.
    """
    samples: dict[str, list[str]] = {}
    sample_idx: dict[str, list[int]] = {}
    for j in range(res.k):
        members = np.flatnonzero(res.labels == j)
        if embeddings is not None and len(members):
            sims = _unit(embeddings[members]) @ res.centroids[j]
            members = members[np.argsort(-sims)]
        chosen = members[:n_samples].tolist()
        sample_idx[str(j)] = chosen
        samples[str(j)] = [texts[i][:sample_chars] for i in chosen]
    return {
        "k": int(res.k),
        "n": int(len(res.labels)),
        "encoder": encoder,
        "points": res.points.round(5).tolist(),
        "labels": res.labels.astype(int).tolist(),
        "sizes": res.sizes,
        "centroids": res.centroids.tolist(),
        "silhouette": res.silhouette,
        "silhouette_by_k": {str(k): v for k, v in res.scores.items()},
        "samples": samples,
        "sample_indices": sample_idx,
    }


def save_result(d: dict[str, Any], out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = out / RESULT_FILE
    p.write_text(json.dumps(d))
    return p


def load_result(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / RESULT_FILE
    if not p.is_file():
        raise ConfigError(f"{p}: no clustering result (run `bdc cluster` first)")
    return json.loads(p.read_text())


def cluster_examples(
    examples: Sequence[Any],
    encoder: Any,
    *,
    k: int | None = None,
    k_max: int = 8,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: Any = None,
) -> dict[str, Any]:
    """Embed <X_i, y_i> for every example, cluster, save ``clusters.json`` in ``out_dir``
    (when given) and return the same dict."""
    texts = [ex.text for ex in examples]
    if progress:
        progress({"phase": "embed", "n": len(texts)})
    emb = encoder.encode(texts)
    if progress:
        progress({"phase": "cluster", "n": len(texts)})
    res = cluster_embeddings(emb, k, k_max=k_max, seed=seed)
    d = result_dict(res, [ex.input for ex in examples], encoder=getattr(encoder, "name", ""), embeddings=emb)
    if out_dir is not None:
        save_result(d, out_dir)
        np.save(Path(out_dir) / "embeddings.npy", emb)
    if progress:
        progress({"phase": "done", "k": d["k"], "sizes": d["sizes"]})
    return d
