"""Stable face track ids from per-frame boxes: optimal (Hungarian) matching, gaps, scene resets.

Pure Python + numpy, so it runs (and is unit-tested) in any env. Boxes are ``[x, y, w, h]`` in pixels.

A track is continued by the detection that matches it best, where "best" is the assignment that
minimises the total cost over all tracks and detections of the frame (so two faces crossing do not
swap ids because one of them was looked at first). A pair may only match when the detection
overlaps the track's predicted box (IoU >= ``min_iou``) or its centre lies within ``max_center_dist``
face sizes of the predicted centre. The prediction moves the last box by the track's velocity for
the frames since it was last seen. A track missing for more than ``max_gap`` frames ends; ids are
never reused within a video, and every scene cut ends all tracks.
"""

import math

import numpy as np

INFEASIBLE = 1e9


def linear_sum_assignment(cost):
    """Minimum-cost assignment of rows to columns of a rectangular ``cost`` matrix.

    Returns ``(rows, cols)`` index lists like ``scipy.optimize.linear_sum_assignment``: every row
    (if rows <= columns, else every column) is matched once. Shortest augmenting paths with
    potentials (Hungarian algorithm), O(n^2 m). Ties are broken deterministically.
    """
    cost = np.asarray(cost, dtype=float)
    if cost.ndim != 2:
        raise ValueError("cost must be a 2-D matrix")
    if cost.size == 0:
        return [], []
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    match = np.zeros(m + 1, dtype=int)  # match[j] = row (1-based) assigned to column j; column 0 is virtual
    way = np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        match[0], j0 = i, 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = match[j0]
            free = ~used[1:]
            reduced = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[match[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if match[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            match[j0] = match[j1]
            j0 = j1
    pairs = sorted((match[j] - 1, j - 1) for j in range(1, m + 1) if match[j])
    rows, cols = [p[0] for p in pairs], [p[1] for p in pairs]
    if transposed:
        pairs = sorted(zip(cols, rows))
        rows, cols = [p[0] for p in pairs], [p[1] for p in pairs]
    return rows, cols


def iou(a, b):
    """Intersection over union of two ``[x, y, w, h]`` boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _centre(box):
    return box[0] + box[2] / 2, box[1] + box[3] / 2


class _Track:
    __slots__ = ("id", "box", "last_frame", "velocity")

    def __init__(self, track_id, box, frame):
        self.id, self.box, self.last_frame, self.velocity = track_id, list(box), frame, (0.0, 0.0)

    def predict(self, frame):
        steps = frame - self.last_frame
        x, y, w, h = self.box
        return [x + self.velocity[0] * steps, y + self.velocity[1] * steps, w, h]

    def update(self, box, frame):
        (cx0, cy0), (cx1, cy1) = _centre(self.box), _centre(box)
        steps = max(frame - self.last_frame, 1)
        step = ((cx1 - cx0) / steps, (cy1 - cy0) / steps)
        # light smoothing: detector jitter must not fling the prediction around
        self.velocity = tuple(0.5 * a + 0.5 * b for a, b in zip(self.velocity, step))
        self.box, self.last_frame = list(box), frame


class TrackAssigner:
    """Online id assignment, one frame at a time; :meth:`cut` at every scene boundary.

    max_gap: frames a track may be missing and still be continued (0 = must be seen every frame).
    min_iou / max_center_dist: gates (either suffices); the centre distance is measured in units of
    the predicted face size (the mean of its width and height).
    """

    def __init__(self, max_gap=5, min_iou=0.2, max_center_dist=0.6, first_id=1):
        if max_gap < 0 or not 0 <= min_iou <= 1 or max_center_dist < 0:
            raise ValueError("max_gap, max_center_dist must be >= 0 and min_iou in [0, 1]")
        self.max_gap, self.min_iou, self.max_center_dist = max_gap, min_iou, max_center_dist
        self.next_id = first_id
        self.tracks = []

    def cut(self):
        """A scene cut: every open track ends (its id is never used again)."""
        self.tracks = []

    def cost(self, track, box, frame):
        """Matching cost in [0, 2), or INFEASIBLE when neither gate is passed."""
        predicted = track.predict(frame)
        overlap = iou(predicted, box)
        (px, py), (bx, by) = _centre(predicted), _centre(box)
        size = max((predicted[2] + predicted[3]) / 2, 1e-6)
        distance = math.hypot(px - bx, py - by) / size
        if overlap < self.min_iou and distance > self.max_center_dist:
            return INFEASIBLE
        return (1.0 - overlap) + min(distance, 1.0)

    def update(self, frame, boxes):
        """Ids for ``boxes`` (a list of [x, y, w, h]) seen at ``frame``; frames must increase."""
        self.tracks = [t for t in self.tracks if frame - t.last_frame <= self.max_gap + 1]
        ids = [None] * len(boxes)
        if self.tracks and boxes:
            cost = np.array([[self.cost(t, b, frame) for b in boxes] for t in self.tracks])
            for r, c in zip(*linear_sum_assignment(cost)):
                if cost[r, c] < INFEASIBLE:
                    self.tracks[r].update(boxes[c], frame)
                    ids[c] = self.tracks[r].id
        for c, box in enumerate(boxes):
            if ids[c] is None:
                track = _Track(self.next_id, box, frame)
                self.next_id += 1
                self.tracks.append(track)
                ids[c] = track.id
        return ids


def assign_track_ids(frames, cuts=(), min_track_frames=1, frame_count=None, **options):
    """Track ids for a whole video.

    frames: iterable of ``(frame_index, [box, ...])`` in increasing frame order (frames without
    faces may be left out). cuts: first frames of new scenes (all tracks end before them).
    min_track_frames: tracks seen in fewer frames are dropped (id None): one-frame false alarms;
    a track seen in every frame of a scene shorter than that is kept (a one-frame video has a face).
    frame_count: frames of the video (end of the last scene; default: the last frame given + 1).
    options: see :class:`TrackAssigner`. Returns a list of id lists parallel to ``frames``; the
    kept tracks are numbered 1, 2, ... in order of first appearance.
    """
    assigner = TrackAssigner(**options)
    cuts = sorted(set(cuts))
    next_cut, raw, scene_start, last = 0, [], {}, -1
    for index, boxes in frames:
        while next_cut < len(cuts) and cuts[next_cut] <= index:
            assigner.cut()
            next_cut += 1
        ids = assigner.update(index, boxes)
        for track_id in ids:
            scene_start.setdefault(track_id, cuts[next_cut - 1] if next_cut else 0)
        raw.append(ids)
        last = index
    end = frame_count if frame_count is not None else last + 1
    seen = {}
    for ids in raw:
        for track_id in ids:
            seen[track_id] = seen.get(track_id, 0) + 1
    final = {}
    for track_id in sorted(seen):
        start = scene_start[track_id]
        scene_length = min([c for c in cuts if c > start] + [end]) - start
        if seen[track_id] >= min(min_track_frames, scene_length):
            final[track_id] = len(final) + 1
    return [[final.get(track_id) for track_id in ids] for ids in raw]
