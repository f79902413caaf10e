"""Step 5b: who speaks on screen. Diarization speakers linked to face tracks by audio-visual synchrony.

Evidence for "track T is speaker S": over the frames where T is visible, the correlation between T's mouth opening
and S's voice, i.e. the loudness of the audio (dB above the clip's noise floor) in the frames where S's turns run and
0 elsewhere, both high-passed: what changes more slowly than about 2 Hz (the mean over 0.5 s around each frame) is
removed, so that what is compared is the syllables (2-7 Hz), not the turns. A real talker's mouth opens and closes with
the syllables of its own voice. A silent face does not follow the sound, and neither does a face whose voice is not in
the audio (voice-over, a muted clip beside the real speaker): its lips may move during the heard speaker's turns, which
a turn-level comparison takes for evidence (about 0.3 on the dev set's voice-over clip), but not with the heard
syllables (0.05; its real talker: 0.73). The correlation is taken at the best lag within ``max_lag`` frames (lips
often move a little before the sound).

This replaced a rule that compared how often the mouth *moved* inside and outside a speaker's turns: a real talker's
mouth moves in the pauses between sentences about as much as while speaking (58 % vs 56 % on a news clip), so that
rule linked nothing on real speech.

When speakers overlap (two voices at once), the loudness of those frames is both voices mixed: it follows every
mouth that talks then, so the correlation is taken over the frames where at most one speaker talks (the evidence's
``frames`` count those). Faces still speak in every frame of their speaker's turns, overlaps included: two linked
faces speak at once when their speakers do.

Links are accepted best correlation first when the correlation is at least ``min_sync``, significant (Fisher z
at least ``min_z``, counting one independent sample per ``sample_frames`` frames: about a syllable), at least
``min_margin`` above the track's correlation with every other speaker, and no track already linked to the same
speaker is on screen in the same frames (one voice, one face at a time). A track gets at most one speaker; a speaker
may get several tracks (one per shot). A face speaks in a frame when its track is linked and its speaker's turn
runs then; unlinked faces never speak.

The mouth signal is the blendshape ``jawOpen`` when the engine gives it for every face of the track
(mediapipe_tasks, yunet), else the inner-lip gap divided by the face height, from the landmarks of the engine's point
scheme (:data:`MOUTH_POINTS`, told apart by the number of points: the MediaPipe mesh, dlib/iBUG 68, OpenSeeFace 66).
"""

import array
import logging
import math
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from vidflow.errors import UserError
from vidflow.io import WRITE_ERRNOS, read_json, write_error, write_json
from vidflow.job import settings_from
from vidflow.jsonstream import compact, write_object
from vidflow.media import ffmpeg_reason, ffprobe, pcm_command, summarize
from vidflow.tracking_json import stream_tracking

LOG = logging.getLogger("link_speakers")

# landmark count -> (upper inner lip, lower inner lip, top of the face, chin), 0-based point indices
MOUTH_POINTS = {
    468: (13, 14, 10, 152),  # MediaPipe face mesh (forehead to chin)
    478: (13, 14, 10, 152),  # ... with irises
    68: (62, 66, 27, 8),  # iBUG 300-W / dlib (nose bridge top to chin)
    66: (60, 64, 27, 8),  # OpenSeeFace: iBUG 68 without the outer mouth corners (48 and 54)
}
SLOW_FRAMES = 6  # high-pass: each value minus the mean over +-6 frames (0.5 s), which removes turns, keeps syllables
FLOOR_PERCENTILE = 5  # the clip's noise floor: this percentile of the frames' loudness
SILENT_DB = -100.0  # loudness of frames without audio



@dataclass(frozen=True)
class LinkSpeakersSettings:
    """The ``link_speakers`` config section (keys and defaults: config/schema.yaml)."""

    min_sync: float  # correlation of mouth and voice from which a track can be linked
    min_z: float  # its significance (Fisher z)
    min_margin: float  # its lead over the track's correlation with any other speaker
    max_lag: int  # frames the voice may lead or lag the mouth
    min_turn_frames: int  # frames of a speaker's turns in which a track must be visible
    sample_frames: int  # frames per independent sample in the significance test (about a syllable)


def _distance(a, b):
    return math.hypot(a[0] - b[0], a[1] - b[1])


def mouth_opening(face):
    """``(signal, value)`` of a face: ``("jawOpen", 0..1)``, ``("lip_gap", gap / face height)`` or ``(None, None)``."""
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


def mouth_values(face):
    """``(jawOpen or None, lip gap or None)`` of one face: the two signals :func:`signals_of` chooses from."""
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


def frame_loudness(samples, sample_rate, fps, first_frame=0):
    """Loudness (dB of the RMS) of the audio during each whole video frame that ``samples`` cover, ``samples``
    starting at frame ``first_frame``'s time."""
    origin, loud, frame = round(first_frame * sample_rate / fps), [], first_frame
    while (end := round((frame + 1) * sample_rate / fps) - origin) <= len(samples):
        chunk = np.asarray(samples[round(frame * sample_rate / fps) - origin:end], dtype=np.float64)
        loud.append(20 * math.log10(max(math.sqrt(float(np.mean(chunk * chunk))), 1e-5)) if chunk.size else SILENT_DB)
        frame += 1
    return np.array(loud)


def read_loudness(video, fps, frame_count, sample_rate=16000, block_frames=50):
    """:func:`frame_loudness` of ``video``'s audio for ``frame_count`` frames, decoded and measured a block at a time
    (2 s at a time: memory does not grow with the length); :data:`SILENT_DB` for frames past the audio's end or without
    audio. Audio that outlasts the video is not decoded further (FFmpeg is stopped)."""
    loud = np.full(frame_count, SILENT_DB)
    if summarize(ffprobe(video))["audio"] is None:
        LOG.info("%s has no audio: no speaker can be linked", video)
        return loud
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(pcm_command(video, sample_rate), stdout=subprocess.PIPE, stderr=errors)
        frame, ended = 0, False
        while frame < frame_count:
            start = int(round(frame * sample_rate / fps))
            stop = int(round(min(frame + block_frames, frame_count) * sample_rate / fps))
            data = proc.stdout.read(2 * (stop - start))
            samples = np.frombuffer(data[:len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768
            block = frame_loudness(samples, sample_rate, fps, frame)
            loud[frame:frame + len(block)] = block
            if len(data) < 2 * (stop - start):
                ended = True
                break
            frame += block_frames
        if not ended:  # every frame measured: the rest of the audio is not needed
            proc.kill()
        proc.stdout.close()
        if proc.wait() != 0 and ended:
            errors.seek(0)
            raise UserError(video, f"cannot decode the audio ({ffmpeg_reason(errors.read().decode(errors='replace'))})")
    return loud


def voices(loudness, active, speakers):
    """``{speaker: per-frame voice}``: loudness above the clip's noise floor in the speaker's turns, 0 elsewhere,
    high-passed (:func:`high_pass`)."""
    loudness = np.asarray(loudness, dtype=np.float64)
    heard = loudness[loudness > SILENT_DB]
    floor = float(np.percentile(heard, FLOOR_PERCENTILE)) if heard.size else 0.0
    above = np.clip(loudness - floor, 0.0, None)
    every = np.arange(len(above))
    return {s: high_pass(every, np.where([s in now for now in active], above, 0.0)) for s in speakers}


def high_pass(frames, values, half=SLOW_FRAMES):
    """``values`` (at sorted int ``frames``, gaps allowed) minus their mean over the frames within ``half`` frames."""
    frames, values = np.asarray(frames, dtype=np.int64), np.asarray(values, dtype=np.float64)
    if not len(frames):
        return values
    index = frames - frames[0]
    total, count = np.zeros(index[-1] + 2 * half + 2), np.zeros(index[-1] + 2 * half + 2)
    total[index + half + 1], count[index + half + 1] = values, 1.0
    total, count = np.cumsum(total), np.cumsum(count)
    window = (total[index + 2 * half + 1] - total[index]) / (count[index + 2 * half + 1] - count[index])
    return values - window


def _correlation(x, y):
    x, y = x - x.mean(), y - y.mean()
    norm = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / norm if norm > 1e-12 else 0.0


def synchrony(frames, mouth, voice, max_lag):
    """``(correlation, lag)``: the best correlation of the mouth at ``frames`` with the voice ``lag`` frames later."""
    best = (0.0, 0)
    for lag in sorted(range(-max_lag, max_lag + 1), key=abs):
        shifted = frames + lag
        keep = (shifted >= 0) & (shifted < len(voice))
        if keep.sum() < 3:
            continue
        r = _correlation(mouth[keep], voice[shifted[keep]])
        if r > best[0] + 1e-12:
            best = (r, lag)
    return best


def significance(r, frames, sample_frames):
    """Fisher z of correlation ``r`` over ``frames`` frames (one independent sample per ``sample_frames``)."""
    samples = frames / sample_frames
    if samples <= 3 or r <= 0:
        return 0.0
    return math.atanh(min(r, 0.999999)) * math.sqrt(samples - 3)


def track_evidence(series, voice_of, active, settings):
    """Per speaker: frames of its turns while the track is visible, synchrony and its significance, all over the
    frames where at most one speaker talks (overlapped frames mix the voices)."""
    frames = np.array(sorted(f for f in series if f < len(active)), dtype=np.int64)
    mouth = high_pass(frames, [series[f] for f in frames.tolist()])
    alone = np.array([len(active[f]) < 2 for f in frames.tolist()], dtype=bool)
    frames, mouth = frames[alone], mouth[alone]
    evidence = []
    for speaker, voice in voice_of.items():
        turns = sum(speaker in active[f] for f in frames.tolist())
        if not turns:
            continue
        r, lag = synchrony(frames, mouth, voice, settings.max_lag)
        evidence.append({"speaker": speaker, "frames": turns, "sync": round(r, 4), "lag": lag,
                         "z": round(significance(r, len(frames), settings.sample_frames), 3)})
    return evidence


def candidate_reason(entry, evidence, settings):
    """Why ``entry`` (one speaker's evidence for a track) cannot be a link, or None if it can."""
    if entry["frames"] < settings.min_turn_frames:
        return "not visible during enough speech"
    if entry["sync"] < settings.min_sync:
        return f"mouth does not follow {entry['speaker']}'s voice (sync {entry['sync']:.2f})"
    if entry["z"] < settings.min_z:
        return f"too little evidence for {entry['speaker']} (z {entry['z']:.1f})"
    others = [e["sync"] for e in evidence if e is not entry]
    if others and entry["sync"] - max(others) < settings.min_margin:
        return f"mouth follows other voices about as well as {entry['speaker']}'s"
    return None


def choose_links(tracks, visible, settings):
    """``{track: (speaker or None, reason)}`` from each track's ``(signal, evidence)``, best synchrony first."""
    choice, pairs = {}, []
    for track, (signal, evidence) in tracks.items():
        if signal is None:
            choice[track] = (None, "no mouth landmarks")
            continue
        if not evidence:
            choice[track] = (None, "not visible during speech")
            continue
        best = max(evidence, key=lambda e: (e["sync"], e["speaker"]))
        reason = candidate_reason(best, evidence, settings)
        if reason:
            choice[track] = (None, reason)
        else:
            pairs.append((-best["sync"], track, best["speaker"]))
    taken = {}
    for _, track, speaker in sorted(pairs):
        rivals = [t for t in taken.get(speaker, []) if len(visible[t] & visible[track]) >= settings.min_turn_frames]
        if rivals:
            choice[track] = (None, f"{speaker}'s voice follows track {rivals[0]} better at the same time")
            continue
        taken.setdefault(speaker, []).append(track)
        choice[track] = (speaker, "linked")
    return choice


def labelled(frame, labels):
    """``frame`` with each face's ``(speaking, speaker)`` of ``labels`` (:meth:`Linker.labels`) on it."""
    faces = [{**face, "speaking": speaking, "speaker": speaker}
             for face, (speaking, speaker) in zip(frame["faces"], labels)]
    return {**frame, "faces": faces}


class Linker:
    """Speaker-to-track links from the tracks' mouth signals and the audio's loudness, then ``speaking``/``speaker``
    for each frame's faces. Feed the frames to :meth:`label` in file order, then take :meth:`record`."""

    def __init__(self, signals, fps, frame_count, diarization, loudness, settings):
        self.settings = settings
        self.fps, self.frame_count = fps, frame_count
        self.speakers = list(diarization.get("speakers") or sorted({s["speaker"] for s in diarization["segments"]}))
        self.active = active = active_speakers(diarization["segments"], frame_count, fps)
        voice_of = voices(loudness, active, self.speakers)
        evidence = {track: (signal, track_evidence(series, voice_of, active, settings) if signal else [])
                    for track, (signal, series) in sorted(signals.items())}
        visible = {track: {f for f in series if f < frame_count} for track, (_, series) in signals.items()}
        choice = choose_links(evidence, visible, settings)
        self.links = {track: speaker for track, (speaker, _) in choice.items()}
        self.tracks = [{"track_id": track, "signal": signal, "speaker": choice[track][0], "reason": choice[track][1],
                        "evidence": entries} for track, (signal, entries) in evidence.items()]
        self.speaking_frames = dict.fromkeys(self.links, 0)

    def labels(self, frame):
        """``[(speaking, speaker), ...]`` for the faces of ``frame``, counted in each track's speaking frames."""
        out = []
        for face in frame["faces"]:
            index, track = frame["frame"], face["track_id"]
            speaker = self.links[track]
            speaking = speaker is not None and index < self.frame_count and speaker in self.active[index]
            self.speaking_frames[track] += speaking
            out.append((speaking, speaker))
        return out

    def label(self, frame):
        """``frame`` with ``speaking`` and ``speaker`` on each face."""
        return labelled(frame, self.labels(frame))

    def label_text(self, frame, text):
        """:meth:`label`'s frame as :func:`compact` text, made from the frame's ``text`` in a compact tracking.json:
        each face's ``"speaker"`` and ``"speaking"`` go in before its ``"track_id"``, its last key (sorted keys), so
        the landmarks are not encoded again (at 600 s that encoding took 5 of link_speakers' 11 s). Faces with a key
        that sorts after ``"speaker"`` (other than ``track_id``) are encoded whole."""
        labels = self.labels(frame)
        pieces = text.split('"track_id":')
        if len(pieces) != len(labels) + 1 or encoded_whole(frame):
            return compact(labelled(frame, labels))
        out = [pieces[0]]
        for (speaking, speaker), piece in zip(labels, pieces[1:]):
            out.append(f'"speaker":{compact(speaker)},"speaking":{"true" if speaking else "false"},"track_id":{piece}')
        return "".join(out)

    def record(self):
        """The link record (speakers.json), with each track's speaking frames counted by :meth:`label`."""
        for entry in self.tracks:
            entry["speaking_frames"] = self.speaking_frames[entry["track_id"]]
            LOG.info("track %s (%s): %s (%s), speaking in %d frames", entry["track_id"], entry["signal"],
                     entry["speaker"], entry["reason"], entry["speaking_frames"])
        return {"fps": self.fps, "frame_count": self.frame_count, "settings": asdict(self.settings),
                "speakers": [{"speaker": s, "tracks": sorted(t for t, linked in self.links.items() if linked == s)}
                             for s in self.speakers],
                "tracks": self.tracks}


def link_speakers_to_tracks(tracking: dict, diarization: dict, loudness, settings: LinkSpeakersSettings):
    """Return ``(faces, speakers)``: tracking.json with ``speaking``/``speaker`` per face, and the link record.

    ``loudness``: the audio's loudness per frame (:func:`frame_loudness`).
    """
    linker = Linker(track_signals(tracking), tracking["fps"], tracking["frame_count"], diarization, loudness,
                    settings)
    frames = [linker.label(frame) for frame in tracking["frames"]]
    return {**tracking, "frames": frames}, linker.record()


def link_speakers_files(tracking_path: str, diarization_path: str, video_path: str, faces_path: str,
                        speakers_path: str, settings: LinkSpeakersSettings) -> dict:
    """:func:`link_speakers_to_tracks` from and to files, in memory that grows only by a few numbers per face.

    One streamed pass over ``tracking_path`` collects the mouth signals and the track ids, and puts each frame's
    text aside in a temporary file; then each frame is labelled and written to ``faces_path``
    (:meth:`Linker.label_text`) from its text, not decoded again. For a compact tracking.json with sorted keys (as
    the tracking step writes it) the bytes equal ``write_json(faces_path, faces, compact=True)``. The loudness comes
    from the audio of ``video_path`` (the video the tracks were found in).
    """
    diarization = read_json(diarization_path)
    header, frames = stream_tracking(tracking_path, raw=True)
    folder = os.path.dirname(os.path.abspath(faces_path))
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile("w+", encoding="utf-8", dir=folder) as texts:
            kept = _SetAside(texts)
            mouths = collect_mouths(kept.keep(frames))
            check_inputs(header, diarization, tracking_path, diarization_path)
            loudness = read_loudness(video_path, header["fps"], header["frame_count"])
            linker = Linker(signals_of(mouths), header["fps"], header["frame_count"], diarization, loudness,
                            settings)
            del mouths
            members = {k: v for k, v in header.items() if k != "frames"}
            write_object(faces_path, members, "frames",
                         (linker.label_text(frame, text) for frame, text in kept.frames()))
    except OSError as err:  # the texts set aside did not fit (the file of faces is as big)
        if err.errno in WRITE_ERRNOS:
            raise write_error(faces_path, err) from None
        raise
    record = linker.record()
    write_json(speakers_path, record)
    return record


def encoded_whole(frame):
    """True when :meth:`Linker.label_text` encodes ``frame`` whole: a face has a key that sorts after "speaker" (other
    than ``track_id``), so the two keys cannot go in before ``track_id``."""
    return any(key >= "speaker" and key != "track_id" for face in frame["faces"] for key in face)


class _SetAside:
    """The frames' texts in a temporary file, and what :meth:`Linker.label_text` needs with each: its frame number
    and track ids (in arrays: ~30 bytes a frame), or the whole frame where label_text encodes it (a face key that
    sorts after "speaker")."""

    def __init__(self, texts):
        self.texts, self.whole = texts, {}
        self.numbers, self.lengths, self.counts, self.tracks = (array.array("q") for _ in range(4))

    def keep(self, frames):
        """Yield the frames of ``(frame, text)`` pairs, keeping each text and its frame's numbers."""
        for frame, text in frames:
            self.texts.write(text)
            if encoded_whole(frame):
                self.whole[len(self.lengths)] = frame
            self.numbers.append(frame["frame"])
            self.lengths.append(len(text))
            self.counts.append(len(frame["faces"]))
            self.tracks.extend(face["track_id"] for face in frame["faces"])
            yield frame

    def frames(self):
        """``(frame, text)`` of each kept frame, the frame cut to what label_text reads."""
        self.texts.seek(0)
        start = 0
        for k, (number, length, count) in enumerate(zip(self.numbers, self.lengths, self.counts)):
            tracks, start = self.tracks[start:start + count], start + count
            frame = self.whole.get(k) or {"frame": number, "faces": [{"track_id": track} for track in tracks]}
            yield frame, self.texts.read(length)


def check_inputs(tracking, diarization, tracking_path, diarization_path):
    """One-line UserError when either input lacks what linking needs."""
    for key in ("fps", "frame_count", "frames"):
        if key not in tracking:
            raise UserError(tracking_path, f"no {key!r}: not a tracking.json")
    if "segments" not in diarization:
        raise UserError(diarization_path, "no 'segments': not a diarization.json")


def run(job):
    settings = settings_from(LinkSpeakersSettings, job.settings)
    link_speakers_files(job.input["tracking"], job.input["diarization"], job.input["video"], job.output["faces"],
                        job.output["speakers"], settings)
