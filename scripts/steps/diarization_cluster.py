"""Speaker clustering of embeddings: spectral clustering with an eigengap estimate of the count.

numpy + scipy only. The number of speakers is estimated as in NME-SC (Park et al. 2019,
"Auto-tuning spectral clustering for speaker diarization using normalized maximum eigengap"):
the cosine affinity is pruned to each row's ``p`` nearest neighbours and binarised; ``p`` is
chosen to minimise ``p / (largest normalised eigengap of the graph Laplacian)``; the speaker
count is where that gap lies. No distance threshold is involved. Embeddings of windows that
share audio (closer in time than ``exclude_within``) are trivially alike, so they are ranked
after all others when the neighbours are chosen: otherwise every speech region (dense,
overlapping windows) forms its own cluster. Beyond ``max_points``
embeddings, a deterministic subsample is clustered and every embedding is assigned to its
nearest cluster centroid, so time and memory grow linearly with the audio.
"""

import numpy as np
from scipy.linalg import eigh


def normalize(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def neighbour_scores(sim, times=None, exclude_within=0.0):
    """Similarities used to rank neighbours: self and overlapping windows pushed to the end."""
    scores = sim.copy()
    if times is not None and exclude_within > 0:
        times = np.asarray(times, dtype=np.float64)
        scores[np.abs(times[:, None] - times[None]) < exclude_within] -= 4.0
    np.fill_diagonal(scores, -8.0)
    return scores


def _pruned_affinity(sim, p):
    """Keep each row's ``p`` largest similarities (binary), symmetrised."""
    n = sim.shape[0]
    order = np.argsort(-sim, axis=1, kind="stable")[:, :p]
    binary = np.zeros((n, n))
    binary[np.repeat(np.arange(n), p), order.ravel()] = 1.0
    return (binary + binary.T) / 2


def _laplacian(affinity):
    return np.diag(affinity.sum(1)) - affinity


def estimate_speakers(sim, min_speakers=1, max_speakers=8, p_grid=None):
    """``(k, p, gap)`` for a cosine-similarity matrix ``sim`` (NME-SC).

    ``k`` is bounded by ``min_speakers``/``max_speakers`` (and the number of points).
    """
    n = sim.shape[0]
    kmax = max(1, min(max_speakers, n - 1))
    if p_grid is None:
        p_grid = sorted({max(2, int(round(f * n))) for f in (0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25)})
        p_grid = [p for p in p_grid if p < n] or [max(1, n - 1)]
    best = None
    for p in p_grid:
        values = eigh(_laplacian(_pruned_affinity(sim, p)), eigvals_only=True)
        gaps = np.diff(values[:kmax + 1]) / max(values[-1], 1e-12)
        lo = max(min_speakers, 1) - 1
        window = gaps[lo:kmax]
        if window.size == 0:
            continue
        k = lo + int(np.argmax(window)) + 1
        gap = float(window.max())
        ratio = p / max(gap, 1e-12)
        if best is None or ratio < best[3] - 1e-12:
            best = (k, p, gap, ratio)
    if best is None:
        return max(1, min_speakers), p_grid[0], 0.0
    return best[0], best[1], best[2]


def kmeans(points, k, seed=0, n_init=10, iterations=100):
    """Deterministic k-means (k-means++ seeding, best of ``n_init``); returns labels."""
    rng = np.random.default_rng(seed)
    n = len(points)
    best_labels, best_inertia = None, np.inf
    for _ in range(n_init):
        centers = [points[rng.integers(n)]]
        for _ in range(1, k):
            d2 = np.min(((points[:, None, :] - np.array(centers)[None]) ** 2).sum(-1), axis=1)
            total = d2.sum()
            centers.append(points[rng.choice(n, p=d2 / total)] if total > 0 else points[rng.integers(n)])
        centers = np.array(centers)
        for _ in range(iterations):
            d2 = ((points[:, None, :] - centers[None]) ** 2).sum(-1)
            labels = d2.argmin(1)
            new = np.array([points[labels == j].mean(0) if np.any(labels == j) else centers[j] for j in range(k)])
            if np.allclose(new, centers):
                break
            centers = new
        inertia = ((points - centers[labels]) ** 2).sum()
        if inertia < best_inertia - 1e-12:
            best_labels, best_inertia = labels, inertia
    return best_labels


def spectral_labels(embeddings, num_speakers=0, min_speakers=1, max_speakers=8, seed=0, times=None,
                    exclude_within=0.0):
    """Cluster labels for (at most a few thousand) embeddings; returns ``(labels, info)``."""
    x = normalize(embeddings)
    n = len(x)
    if n < 3:
        k = min(max(num_speakers, min_speakers, 1), n)
        return np.arange(n) % max(k, 1), {"estimated": False, "k": k}
    sim = neighbour_scores(x @ x.T, times, exclude_within)
    if num_speakers:
        k = min(num_speakers, n)
        _, p, gap = estimate_speakers(sim, k, k)
        info = {"estimated": False, "k": k, "p": p}
    else:
        k, p, gap = estimate_speakers(sim, min_speakers, max_speakers)
        info = {"estimated": True, "k": k, "p": p, "eigengap": round(gap, 6)}
    if k <= 1:
        return np.zeros(n, dtype=int), info
    _, vectors = eigh(_laplacian(_pruned_affinity(sim, p)), subset_by_index=[0, k - 1])
    return kmeans(normalize(vectors), k, seed=seed), info


def merge_similar_clusters(x, labels, threshold, min_speakers=1):
    """Merge the two clusters with the most similar centroids while their cosine is >= ``threshold``.

    The eigengap estimate is unreliable on a handful of embeddings (a few seconds of speech):
    it may split one voice into several clusters whose centroids are nearly identical. This
    guard only ever merges, never splits, and keeps at least ``min_speakers`` clusters.
    Labels are renumbered 0.. in order of first appearance.
    """
    labels = np.asarray(labels).copy()
    while True:
        ids = sorted(set(labels.tolist()))
        if len(ids) <= max(min_speakers, 1):
            break
        centroids = normalize(np.array([x[labels == i].mean(0) for i in ids]))
        sim = centroids @ centroids.T
        np.fill_diagonal(sim, -1.0)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        if sim[a, b] < threshold:
            break
        labels[labels == ids[b]] = ids[a]
    _, first = np.unique(labels, return_index=True)
    order = {old: new for new, old in enumerate(labels[np.sort(first)])}
    return np.array([order[v] for v in labels.tolist()], dtype=int)


def cluster_embeddings(embeddings, num_speakers=0, min_speakers=1, max_speakers=8, max_points=1000, seed=0,
                       times=None, exclude_within=0.0, merge_similarity=None):
    """Speaker labels for every embedding (ints from 0) and a dict describing the clustering.

    Up to ``max_points`` embeddings are clustered directly; beyond that an evenly spaced
    subsample is clustered and all embeddings are assigned to the nearest centroid (cosine).
    With an estimated count, clusters whose centroids are at least ``merge_similarity`` alike
    are merged afterwards (see :func:`merge_similar_clusters`).
    """
    labels, info = _cluster(normalize(embeddings), num_speakers, min_speakers, max_speakers, max_points, seed,
                            times, exclude_within)
    if merge_similarity is not None and not num_speakers and len(labels):
        merged = merge_similar_clusters(normalize(embeddings), labels, merge_similarity, min_speakers)
        if merged.max() < labels.max():
            info = {**info, "merged_to": int(merged.max()) + 1}
        labels = merged
    return labels, info


def _cluster(x, num_speakers, min_speakers, max_speakers, max_points, seed, times, exclude_within):
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int), {"k": 0}
    if n <= max_points:
        return spectral_labels(x, num_speakers, min_speakers, max_speakers, seed, times, exclude_within)
    chosen = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    sub_times = None if times is None else np.asarray(times)[chosen]
    sub_labels, info = spectral_labels(x[chosen], num_speakers, min_speakers, max_speakers, seed, sub_times,
                                       exclude_within)
    centroids = normalize(np.array([x[chosen][sub_labels == j].mean(0) for j in range(sub_labels.max() + 1)]))
    labels = np.empty(n, dtype=int)
    for start in range(0, n, 8192):
        labels[start:start + 8192] = (x[start:start + 8192] @ centroids.T).argmax(1)
    return labels, {**info, "subsampled": int(len(chosen))}
