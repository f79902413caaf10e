"""Step 5b: who speaks on screen. Mouth motion per face, gated by speech, and diarization speakers linked to tracks.

Per face and frame, ``speaking`` is true when the face's mouth moves (the mouth signal varies over a short window:
speech makes the lips oscillate, an open but still mouth does not count) *and* the diarization has speech at that
frame (sampled at the frame's middle, as step 6 does). Once a track is linked to a speaker, it speaks only while that
speaker's turns are running.

The mouth signal is the blendshape ``jawOpen`` when the engine gives it (mediapipe_tasks, yunet), else the inner-lip
gap divided by the face height, from the landmarks of the engine's point scheme (:data:`MOUTH_POINTS`, told apart by
the number of points: the MediaPipe mesh, dlib/iBUG 68 points, OpenSeeFace 66 points).

A diarization speaker is linked to a track when, over the frames where the track is visible during that speaker's
turns, its mouth moves in at least ``min_fraction`` of them (and in at least ``min_turn_frames`` frames of turns),
and clearly more often (``min_margin``) than during any other speaker's turns or during silence. A track gets at most
one speaker; a speaker may get several tracks (one per shot, say). Everything else stays unlinked (``speaker``
null): the evidence has to support a link. Standard library only.
"""

import logging
import math

from vidflow.errors import UserError
from vidflow.io import read_json, write_json
from vidflow.jsonstream import compact, read_document, write_object

LOG = logging.getLogger("link_speakers")

# landmark count -> (upper inner lip, lower inner lip, top of the face, chin), 0-based point indices
MOUTH_POINTS = {
    468: (13, 14, 10, 152),  # MediaPipe face mesh (forehead to chin)
    478: (13, 14, 10, 152),  # ... with irises
    68: (62, 66, 27, 8),  # iBUG 300-W / dlib (nose bridge top to chin)
    66: (60, 64, 27, 8),  # OpenSeeFace: iBUG 68 without the outer mouth corners (48 and 54)
}
SILENCE = None  # pseudo-speaker of the frames without speech (evidence only)

DEFAULTS = {"window": 5, "lip_motion": 0.012, "jaw_motion": 0.06, "min_fraction": 0.4, "min_margin": 0.2,
            "min_turn_frames": 12}


def _distance(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])


def mouth_opening(face):
    """``(signal, value)`` of one face: ``("jawOpen", 0..1)``, ``("lip_gap", gap / face height)`` or ``(None, None)``."""
    blendshapes = face.get("blendshapes") or {}
    if "jawOpen" in blendshapes:
        return "jawOpen", float(blendshapes["jawOpen"])
    landmarks = face.get("landmarks") or []
    if len(landmarks) not in MOUTH_POINTS:
        return None, None
    upper, lower, top, chin = MOUTH_POINTS[len(landmarks)]
    height = _distance(landmarks[top], landmarks[chin])
    if height <= 0:
        return None, None
    return "lip_gap", _distance(landmarks[upper], landmarks[lower]) / height


def _std(values):
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def mouth_motion(series, window):
    """``{frame: std of the signal over frames frame-window..frame+window}`` for one track's ``{frame: value}``.

    Frames with fewer than 3 values in their window get 0 (too little evidence of motion).
    """
    motion = {}
    for frame in series:
        values = [series[f] for f in range(frame - window, frame + window + 1) if f in series]
        motion[frame] = _std(values) if len(values) >= 3 else 0.0
    return motion


def mouth_values(face):
    """``(jawOpen or None, lip gap or None)`` of one face: the two signals :func:`track_signals` chooses from."""
    blendshapes = face.get("blendshapes") or {}
    jaw = float(blendshapes["jawOpen"]) if "jawOpen" in blendshapes else None
    kind, lip = mouth_opening({k: v for k, v in face.items() if k != "blendshapes"})
    return jaw, lip if kind == "lip_gap" else None


def collect_mouths(frames):
    """``{track_id: [(frame, jawOpen, lip gap), ...]}`` in file order: the few numbers per face linking needs."""
    mouths = {}
    for frame in frames:
        for face in frame["faces"]:
            mouths.setdefault(face["track_id"], []).append((frame["frame"], *mouth_values(face)))
    return mouths


def signals_of(mouths):
    """``{track_id: (signal name, {frame: value})}`` from :func:`collect_mouths`; ``jawOpen`` only if every face of
    the track has it, else the lip gap (where the landmarks give one)."""
    signals = {}
    for track, faces in mouths.items():
        names = {"jawOpen" if jaw is not None else "lip_gap" if lip is not None else None for _, jaw, lip in faces}
        name = "jawOpen" if names == {"jawOpen"} else "lip_gap" if "lip_gap" in names or "jawOpen" in names else None
        series = {}
        for index, jaw, lip in faces:
            value = jaw if name == "jawOpen" else lip if name == "lip_gap" else None
            if value is not None:
                series[index] = value
        signals[track] = (name, series)
    return signals


def track_signals(tracking):
    """``{track_id: (signal name, {frame: value})}``; ``jawOpen`` only if every face of the track has it."""
    return signals_of(collect_mouths(tracking["frames"]))


def active_speakers(segments, frame_count, fps):
    """Per frame, the set of speakers whose segment covers the frame's middle (start inclusive, end exclusive).

    Frames with the same speakers share one frozenset, so a long video costs a pointer per frame.
    """
    active, shared = [frozenset()] * frame_count, {}
    for seg in segments:
        first = max(0, math.ceil(seg["start"] * fps - 0.5))
        for index in range(first, frame_count):
            middle = (index + 0.5) / fps
            if middle >= seg["end"]:
                break
            if middle >= seg["start"]:
                key = (active[index], seg["speaker"])
                if key not in shared:
                    shared[key] = active[index] | {seg["speaker"]}
                active[index] = shared[key]
    return active


def link_evidence(moving, visible, active, speakers):
    """Per speaker (and ``SILENCE``): frames of the track visible then, and how many of those its mouth moved."""
    evidence = {s: [0, 0] for s in [*speakers, SILENCE]}
    for frame in visible:
        for speaker in active[frame] or {SILENCE}:
            evidence[speaker][0] += 1
            evidence[speaker][1] += bool(moving.get(frame))
    return evidence


def choose_speaker(evidence, settings):
    """``(speaker or None, reason)`` for one track from :func:`link_evidence`."""
    scored = {s: m / n for s, (n, m) in evidence.items() if n >= settings["min_turn_frames"]}
    candidates = sorted(((f, s) for s, f in scored.items() if s is not SILENCE), key=lambda x: (-x[0], x[1]))
    if not candidates:
        return None, "not visible during enough speech"
    best, speaker = candidates[0]
    if best < settings["min_fraction"]:
        return None, f"mouth moves in {best:.0%} of {speaker}'s turns at most"
    others = [f for s, f in scored.items() if s != speaker]
    if others and best - max(others) < settings["min_margin"]:
        return None, f"mouth moves as much outside {speaker}'s turns"
    return speaker, "linked"


class Linker:
    """Speaker-to-track links from the tracks' mouth signals, then ``speaking``/``speaker`` for each frame's faces.

    Feed the frames to :meth:`label` in file order (once the links are made), then take :meth:`record`.
    """

    def __init__(self, signals, fps, frame_count, diarization, settings=None):
        self.settings = settings = {**DEFAULTS, **(settings or {})}
        self.fps, self.frame_count = fps, frame_count
        self.speakers = list(diarization.get("speakers") or sorted({s["speaker"] for s in diarization["segments"]}))
        self.active = active = active_speakers(diarization["segments"], frame_count, fps)
        thresholds = {"jawOpen": settings["jaw_motion"], "lip_gap": settings["lip_motion"]}
        self.tracks, self.links, self.moving = [], {}, {}
        for track, (signal, series) in sorted(signals.items()):
            motion = mouth_motion(series, settings["window"]) if signal else {}
            moving = {f: v >= thresholds[signal] for f, v in motion.items()}
            visible = sorted(f for f in series if f < frame_count)
            evidence = link_evidence(moving, visible, active, self.speakers)
            speaker, reason = choose_speaker(evidence, settings) if signal else (None, "no mouth landmarks")
            self.links[track], self.moving[track] = speaker, {f for f, m in moving.items() if m}
            self.tracks.append({"track_id": track, "signal": signal, "speaker": speaker, "reason": reason,
                                "evidence": [{"speaker": s, "frames": n, "moving_frames": m,
                                              "fraction": round(m / n, 3) if n else 0.0}
                                             for s, (n, m) in evidence.items() if n]})
        self.speaking_frames = dict.fromkeys(self.links, 0)

    def label(self, frame):
        """``frame`` with ``speaking`` and ``speaker`` on each face."""
        faces = []
        for face in frame["faces"]:
            index, track = frame["frame"], face["track_id"]
            now = self.active[index] if index < self.frame_count else set()
            speaker = self.links[track]
            speaking = index in self.moving[track] and bool(now) and (speaker is None or speaker in now)
            self.speaking_frames[track] += speaking
            faces.append({**face, "speaking": speaking, "speaker": speaker})
        return {**frame, "faces": faces}

    def record(self):
        """The link record (speakers.json), with each track's speaking frames counted by :meth:`label`."""
        for entry in self.tracks:
            entry["speaking_frames"] = self.speaking_frames[entry["track_id"]]
            LOG.info("track %s (%s): %s (%s), speaking in %d frames", entry["track_id"], entry["signal"],
                     entry["speaker"], entry["reason"], entry["speaking_frames"])
        return {"fps": self.fps, "frame_count": self.frame_count, "settings": self.settings,
                "speakers": [{"speaker": s, "tracks": sorted(t for t, linked in self.links.items() if linked == s)}
                             for s in self.speakers],
                "tracks": self.tracks}


def link_speakers_to_tracks(tracking, diarization, settings=None):
    """Return ``(faces, speakers)``: tracking.json with ``speaking``/``speaker`` per face, and the link record."""
    linker = Linker(track_signals(tracking), tracking["fps"], tracking["frame_count"], diarization, settings)
    frames = [linker.label(frame) for frame in tracking["frames"]]
    return {**tracking, "frames": frames}, linker.record()


def link_speakers_files(tracking_path, diarization_path, faces_path, speakers_path, settings=None):
    """:func:`link_speakers_to_tracks` from and to files, in memory that does not grow with the video's length.

    Two streamed passes over ``tracking_path``: the mouth signals (a few numbers per face), then each frame labelled
    and written to ``faces_path``; the bytes equal ``write_json(faces_path, faces, compact=True)``.
    """
    diarization = read_json(diarization_path)
    header, frames = read_document(tracking_path, "frames")
    mouths = collect_mouths(frames)
    check_inputs(header, diarization, tracking_path, diarization_path)
    linker = Linker(signals_of(mouths), header["fps"], header["frame_count"], diarization, settings)
    del mouths
    members = {k: v for k, v in header.items() if k != "frames"}
    _, frames = read_document(tracking_path, "frames")
    write_object(faces_path, members, "frames", (compact(linker.label(frame)) for frame in frames))
    record = linker.record()
    write_json(speakers_path, record)
    return record


def check_inputs(tracking, diarization, tracking_path, diarization_path):
    """One-line UserError when either input lacks what linking needs."""
    for key in ("fps", "frame_count", "frames"):
        if key not in tracking:
            raise UserError(tracking_path, f"no {key!r}: not a tracking.json")
    if "segments" not in diarization:
        raise UserError(diarization_path, "no 'segments': not a diarization.json")
