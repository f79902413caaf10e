"""Persons from embeddings: agglomerative clustering with a calibrated threshold and cannot-link pairs (numpy only).

The number of persons is never given: clusters merge (average linkage) while their distance is under the
threshold, and never when they hold two items that cannot be one person (two faces in the same frame, two
speakers diarization told apart in one video). Faces use dlib's euclidean distance, voices the cosine distance.
"""

import numpy as np


def distances(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Pairwise ``euclidean`` or ``cosine`` (1 - cosine similarity) distances of the rows of ``vectors``.

    Row by row without a matrix product, so the values do not depend on how many threads BLAS uses.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    if metric == "euclidean":
        return np.stack([np.sqrt(((vectors - row) ** 2).sum(axis=1)) for row in vectors]) if len(vectors) else \
            np.zeros((0, 0))
    if metric == "cosine":
        norms = np.sqrt((vectors ** 2).sum(axis=1, keepdims=True))
        unit = vectors / np.where(norms > 0, norms, 1)
        return np.stack([np.clip(1.0 - (unit * row).sum(axis=1), 0, 2) for row in unit]) if len(unit) else \
            np.zeros((0, 0))
    raise ValueError(f"unknown metric {metric!r}")


def cluster(vectors, threshold: float, metric: str = "euclidean", cannot_link=()) -> list:
    """Labels 0, 1, ... (numbered by each cluster's first item) of average-linkage clusters of ``vectors``.

    Two clusters merge, closest first, while their average distance is below ``threshold`` and no pair of
    ``cannot_link`` (index pairs) would end up in one cluster. Deterministic: ties go to the lowest indices.
    """
    n = len(vectors)
    if n == 0:
        return []
    dist = distances(np.asarray(vectors), metric)
    blocked = np.zeros((n, n), dtype=bool)
    for i, j in cannot_link:
        blocked[i, j] = blocked[j, i] = True
    members = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    sizes = np.ones(n)
    work = dist.copy()
    np.fill_diagonal(work, np.inf)
    while True:
        masked = np.where(blocked | ~alive[None, :] | ~alive[:, None], np.inf, work)
        flat = int(np.argmin(masked))
        i, j = divmod(flat, n)
        if not masked[i, j] < threshold:
            break
        i, j = min(i, j), max(i, j)
        # Lance-Williams update for average linkage: the merged cluster's distance to every other one.
        work[i, :] = (sizes[i] * work[i, :] + sizes[j] * work[j, :]) / (sizes[i] + sizes[j])
        work[:, i] = work[i, :]
        work[i, i] = np.inf
        blocked[i, :] |= blocked[j, :]
        blocked[:, i] = blocked[i, :]
        sizes[i] += sizes[j]
        members[i] += members[j]
        alive[j] = False
    labels = [0] * n
    order = sorted((min(members[k]), k) for k in range(n) if alive[k])
    for label, (_, k) in enumerate(order):
        for item in members[k]:
            labels[item] = label
    return labels


def purity_coverage(labels: list, truth: list) -> tuple:
    """Cluster purity (share of items in their cluster's majority identity) and coverage (share of items in
    their identity's largest cluster), as pyannote.metrics defines them for diarization; ``None`` labels
    (unassigned items) count against coverage only."""
    pairs = [(label, true) for label, true in zip(labels, truth)]
    assigned = [(label, true) for label, true in pairs if label is not None]
    if not pairs:
        return 1.0, 1.0
    purity = sum(max(sum(1 for lab, t in assigned if lab == label and t == true) for true in set(truth))
                 for label in set(lab for lab, _ in assigned)) / max(len(assigned), 1)
    coverage = sum(max((sum(1 for lab, t in assigned if t == true and lab == label)
                        for label in set(lab for lab, _ in assigned)), default=0)
                   for true in set(truth)) / len(pairs)
    return purity, coverage


def join_faces_and_voices(links: dict) -> list:
    """One-to-one pairs ``(face_cluster, voice_cluster)`` from ``links``: ``(face_cluster, voice_cluster) ->
    weight`` (the speaking frames of the tracks linked to that voice's speakers), heaviest first."""
    pairs, faces, voices = [], set(), set()
    for (face, voice), weight in sorted(links.items(), key=lambda kv: (-kv[1], kv[0])):
        if weight > 0 and face not in faces and voice not in voices:
            pairs.append((face, voice))
            faces.add(face)
            voices.add(voice)
    return sorted(pairs)
