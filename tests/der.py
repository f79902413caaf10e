"""Diarization error rate for the tests' truth (tests/test_diarization.py): numpy only, so the driver venv scores
the step's output without pyannote.metrics (benchmarks/quality_scores.py scores the real dev set with it)."""

from itertools import permutations

import numpy as np


def diarization_error_rate(reference, hypothesis, collar=0.25, step=0.001):
    """DER = (missed + false alarm + confusion) / reference speech, as pyannote.metrics defines it.

    Segments are ``{"start", "end", "speaker"}`` (or tuples). ``collar`` seconds on each side of
    every reference boundary are not scored. Speakers are mapped one-to-one to maximise the
    matched time (exhaustively for up to 8 speakers, greedily beyond). Returns
    ``{"der", "missed", "false_alarm", "confusion", "total"}`` (seconds, ``der`` a fraction).
    """
    ref = [_as_tuple(s) for s in reference]
    hyp = [_as_tuple(s) for s in hypothesis]
    end = max([e for _, e, _ in ref + hyp] + [0.0])
    n = int(np.ceil(end / step)) + 1
    ref_names = sorted({s for *_, s in ref})
    hyp_names = sorted({s for *_, s in hyp})
    R = np.zeros((len(ref_names), n), dtype=bool)
    H = np.zeros((len(hyp_names), n), dtype=bool)
    for matrix, names, segs in ((R, ref_names, ref), (H, hyp_names, hyp)):
        for start, stop, spk in segs:
            matrix[names.index(spk), int(round(start / step)):int(round(stop / step))] = True
    scored = np.ones(n, dtype=bool)
    for start, stop, _ in ref:
        for t in (start, stop):
            scored[max(0, int(round((t - collar) / step))):int(round((t + collar) / step))] = False
    R, H = R[:, scored], H[:, scored]
    n_ref, n_hyp = R.sum(0), H.sum(0)
    overlap = R.astype(np.int64) @ H.T.astype(np.int64) if len(ref_names) and len(hyp_names) else None
    mapping = _best_mapping(overlap) if overlap is not None else []
    correct = sum(int(overlap[i, j]) for i, j in mapping)
    total = int(n_ref.sum())
    missed = int(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = int(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = int(np.minimum(n_ref, n_hyp).sum()) - correct
    der = (missed + false_alarm + confusion) / total if total else float(missed + false_alarm + confusion > 0)
    return {"der": der, "missed": missed * step, "false_alarm": false_alarm * step, "confusion": confusion * step,
            "total": total * step}


def _as_tuple(segment):
    if isinstance(segment, dict):
        return float(segment["start"]), float(segment["end"]), segment["speaker"]
    return float(segment[0]), float(segment[1]), segment[2]


def _best_mapping(overlap):
    """Pairs (ref, hyp) maximising the summed overlap, one-to-one."""
    n_ref, n_hyp = overlap.shape
    if min(n_ref, n_hyp) <= 8 and max(n_ref, n_hyp) <= 8:
        best, best_pairs = -1, []
        if n_ref <= n_hyp:
            for perm in permutations(range(n_hyp), n_ref):
                score = sum(overlap[i, j] for i, j in enumerate(perm))
                if score > best:
                    best, best_pairs = score, list(enumerate(perm))
        else:
            for perm in permutations(range(n_ref), n_hyp):
                score = sum(overlap[i, j] for j, i in enumerate(perm))
                if score > best:
                    best, best_pairs = score, [(i, j) for j, i in enumerate(perm)]
        return best_pairs
    pairs, used_r, used_h = [], set(), set()
    for flat in np.argsort(-overlap, axis=None, kind="stable"):
        i, j = divmod(int(flat), n_hyp)
        if i not in used_r and j not in used_h:
            pairs.append((i, j))
            used_r.add(i)
            used_h.add(j)
    return pairs
