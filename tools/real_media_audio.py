"""Conversations composed from real recordings, with exact truth by construction, and recording conditions.

Each source utterance is trimmed to its speech (10 ms frames above an energy threshold: 35 dB below its loudest
frame, and 8 dB above its noise floor where it has one), normalised in level, and placed on a millisecond grid;
the truth of an utterance is its speech regions (internal pauses of at least :data:`SPLIT_PAUSE` seconds split
it), so the RTTM marks speech tightly. Turn-taking
(seeded numpy RNG): turns of one to three lines of one speaker with short pauses inside, short turns and
backchannels under a second, gaps between turns and overlaps of 0.2-1 s. Conditions act on the mixed track: a
seeded exponential-decay room impulse response, room noise at a given SNR, a telephone band (300-3400 Hz, 8 kHz).
"""

import os
import subprocess
import wave
from dataclasses import dataclass, field

import numpy as np
from real_media_sources import RATE, decode, recordings, unpacked
from scipy import signal

FRAME = RATE // 100  # 10 ms analysis frames
FLOOR_DB = -35.0  # a frame is speech when its RMS is within this of the utterance's loudest frame ...
ABOVE_FLOOR_DB = 8.0  # ... and this far above the recording's noise floor (10th percentile of the frames) ...
CLEAR_FLOOR_DB = 25.0  # ... when that floor lies this far below the loudest frame (else there is no floor to see)
SPLIT_PAUSE = 0.5  # seconds of silence inside an utterance that split its truth into two segments
LEVEL_DB = -26.0  # speech RMS each utterance is normalised to (before the speaker's own offset)


def speech_regions(samples, min_pause=SPLIT_PAUSE):
    """[(start, end)] sample ranges of speech (10 ms grid); pauses shorter than ``min_pause`` s are bridged."""
    frames = len(samples) // FRAME
    if frames == 0:
        return []
    rms = np.sqrt(np.mean(samples[:frames * FRAME].reshape(frames, FRAME).astype(np.float64) ** 2, axis=1))
    level = 20 * np.log10(rms + 1e-9)
    threshold = max(level.max() + FLOOR_DB, -60.0)
    floor = np.percentile(level, 10)  # a hissing recording (GSM): speech is what stands out of its noise floor
    if floor < level.max() - CLEAR_FLOOR_DB:
        threshold = max(threshold, floor + ABOVE_FLOOR_DB)
    loud = level > threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
    runs = [[a, b] for a, b in zip(edges[::2], edges[1::2])]
    merged = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < min_pause * 100:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [(a * FRAME, b * FRAME) for a, b in merged if b - a >= 5]  # at least 50 ms


@dataclass
class Utterance:
    speaker: str
    source: tuple  # (package, path inside it)
    samples: np.ndarray  # trimmed to its speech, float32 at RATE
    regions: list  # speech regions relative to the trimmed start (samples)
    start: int = 0  # where it is placed (samples)
    gain: float = 1.0

    @property
    def seconds(self):
        return len(self.samples) / RATE


@dataclass
class Pool:
    """The recordings of one speaker in a seeded order, decoded and trimmed on demand."""

    speaker: str
    cache: str
    order: list
    used: set = field(default_factory=set)
    rates: list = field(default_factory=list)  # file bytes per second of the recordings decoded so far

    def take(self, shortest, longest):
        """The next unused utterance lasting ``shortest``-``longest`` s (else the next unused one that fits, else None).

        Recordings whose file size says they are far too short or long are skipped undecoded (bytes per second of
        the ones decoded so far; the codecs here have a near-constant bit rate).
        """
        fallback = None
        for index, source in enumerate(self.order):
            if index in self.used:
                continue
            size = os.path.getsize(unpacked(source[0], self.cache) / source[1])
            if len(self.rates) >= 3 and not 0.6 * shortest <= size / np.median(self.rates) <= 1.5 * longest:
                continue
            samples = decode(self.cache, *source)
            self.rates.append(size / max(len(samples) / RATE, 0.01))
            regions = speech_regions(samples)
            if not regions:
                self.used.add(index)
                continue
            first, last = regions[0][0], regions[-1][1]
            utterance = Utterance(self.speaker, source, samples[first:last],
                                  [(a - first, b - first) for a, b in regions])
            if shortest <= utterance.seconds <= longest:
                self.used.add(index)
                return utterance
            if fallback is None and utterance.seconds <= longest:
                fallback = (index, utterance)
        if fallback is None:
            return None  # every recording used
        self.used.add(fallback[0])
        return fallback[1]


def pools(speakers, cache, rng):
    return {s: Pool(s, str(cache), [recordings(s, cache)[i] for i in rng.permutation(len(recordings(s, cache)))])
            for s in speakers}


def compose(speakers, cache, seconds, rng, longest=8.0, overlap=0.25, backchannel=0.3, short_turn=0.2):
    """Utterances of a conversation of ``speakers`` filling about ``seconds`` s (see the module doc)."""
    pool = pools(speakers, cache, rng)
    offsets = {s: rng.uniform(-3.0, 3.0) for s in speakers}  # each speaker's own level (dB)
    placed = []
    t, speaker = rng.uniform(0.3, 0.8), speakers[0]

    def place(utterance, at):
        utterance.start = round(at * 1000) * (RATE // 1000)
        speech = np.concatenate([utterance.samples[a:b] for a, b in utterance.regions])
        level = 20 * np.log10(np.sqrt(np.mean(speech.astype(np.float64) ** 2)) + 1e-9)
        utterance.gain = 10 ** ((LEVEL_DB + offsets[utterance.speaker] + rng.uniform(-1.5, 1.5) - level) / 20)
        placed.append(utterance)
        return (utterance.start + len(utterance.samples)) / RATE

    while True:
        short = rng.random() < short_turn  # a turn of one short line ("yes", "no", a name)
        lines = 1 if short else int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
        end = None
        for _line in range(lines):
            utterance = (short and pool[speaker].take(0.25, 1.0)) or pool[speaker].take(0.8, longest)
            if utterance is None or t + utterance.seconds > seconds:
                break
            end = place(utterance, t)
            others = [s for s in speakers if s != speaker]
            if others and utterance.seconds >= 2.0 and rng.random() < backchannel:
                listener = others[int(rng.integers(len(others)))]
                reply = pool[listener].take(0.2, 1.0)
                if reply is not None and reply.seconds < utterance.seconds - 0.8:
                    place(reply, t + rng.uniform(0.4, utterance.seconds - reply.seconds - 0.3))
            t = end + rng.uniform(0.2, 0.7)  # a pause inside the turn
        if end is None:
            break
        others = [s for s in speakers if s != speaker] or [speaker]
        talked = {s: sum(u.seconds for u in placed if u.speaker == s) for s in others}
        weights = np.array([1.0 / (1.0 + talked[s]) ** 2 for s in others])  # who has said least speaks next
        speaker = others[int(rng.choice(len(others), p=weights / weights.sum()))]
        if len(speakers) > 1 and rng.random() < overlap:
            t = end - rng.uniform(0.2, max(0.2, min(1.0, 0.5 * placed[-1].seconds)))
        else:
            t = end + (rng.uniform(0.15, 1.0) if len(speakers) > 1 else rng.uniform(0.4, 1.5))
        if t + 0.5 > seconds:
            break
    return sorted(placed, key=lambda u: (u.start, u.speaker))


def segments(placed):
    """Truth segments [{"start", "end", "speaker", "source"}] (seconds, exact to the 10 ms grid)."""
    out = []
    for u in placed:
        for a, b in u.regions:
            out.append({"start": round((u.start + a) / RATE, 3), "end": round((u.start + b) / RATE, 3),
                        "speaker": u.speaker, "source": f"{u.source[0]}:{u.source[1]}"})
    return sorted(out, key=lambda s: (s["start"], s["speaker"], s["end"]))


def render(placed, total, speakers=None):
    """The dry mix of ``placed`` (or of ``speakers`` only) as float64, ``total`` samples long."""
    track = np.zeros(total)
    for u in placed:
        if speakers is None or u.speaker in speakers:
            track[u.start:u.start + len(u.samples)] += u.gain * u.samples
    return track


# --------------------------------------------------------------------------- conditions


def reverberate(track, rng, rt60=0.5, direct_to_reverb_db=3.0):
    """``track`` through a seeded room: direct sound + exponentially decaying noise tail (``rt60`` s)."""
    n = int(rt60 * 1.2 * RATE)
    t = np.arange(n) / RATE
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    tail[: int(0.005 * RATE)] = 0.0  # 5 ms before the first reflection
    tail *= 10 ** (-direct_to_reverb_db / 20) / np.sqrt(np.sum(tail ** 2))
    tail[0] = 1.0
    return signal.fftconvolve(track, tail)[: len(track)]


def add_room_noise(track, rng, snr_db, speech):
    """``track`` plus pink room noise with a faint 50 Hz hum, ``snr_db`` below the speech power in ``speech``."""
    spectrum = np.fft.rfft(rng.standard_normal(len(track)))
    freqs = np.fft.rfftfreq(len(track), 1 / RATE)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    noise = np.fft.irfft(spectrum, len(track))
    t = np.arange(len(track)) / RATE
    hum = sum(np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    noise = noise / np.std(noise) + 0.3 * hum / np.std(hum)
    power = np.mean(track[speech] ** 2)
    return track + noise * np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise ** 2))


def telephone(track):
    """300-3400 Hz band, through 8 kHz and back."""
    sos = signal.butter(6, [300, 3400], btype="bandpass", fs=RATE, output="sos")
    return signal.resample_poly(signal.resample_poly(signal.sosfilt(sos, track), 1, 2), 2, 1)[: len(track)]


def speech_mask(segs, total):
    mask = np.zeros(total, dtype=bool)
    for s in segs:
        mask[round(s["start"] * RATE):round(s["end"] * RATE)] = True
    return mask


def apply_conditions(track, conditions, segs, rng):
    """``conditions``: {"reverb": rt60, "noise_snr": dB, "telephone": true} in that order."""
    if conditions.get("reverb"):
        track = reverberate(track, rng, conditions["reverb"])
    if conditions.get("noise_snr") is not None:
        track = add_room_noise(track, rng, conditions["noise_snr"], speech_mask(segs, len(track)))
    if conditions.get("telephone"):
        track = telephone(track)
    return track


# --------------------------------------------------------------------------- files


def overlap_seconds(segs):
    """Seconds during which two or more speakers talk (on the 1 ms grid)."""
    ends = max((s["end"] for s in segs), default=0)
    count = np.zeros(round(ends * 1000) + 1, dtype=np.int16)
    for s in segs:
        count[round(s["start"] * 1000):round(s["end"] * 1000)] += 1
    return round(float(np.sum(count >= 2)) / 1000, 3)


def write_wav(path, track):
    """16-bit mono wav at RATE; a track louder than 0.9 full scale is scaled down to 0.9 (never up)."""
    peak = np.max(np.abs(track)) if len(track) else 0.0
    scaled = track * (0.9 / peak if peak > 0.9 else 1.0)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.clip(np.rint(scaled * 32767), -32768, 32767).astype("<i2").tobytes())


def write_rttm(path, name, segs):
    lines = [f"SPEAKER {name} 1 {s['start']:.3f} {s['end'] - s['start']:.3f} <NA> <NA> {s['speaker']} <NA> <NA>\n"
             for s in segs]
    path.write_text("".join(lines))


BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1",
            "-map_chapters", "-1"]
X264 = ["-c:v", "libx264", "-preset", "medium", "-pix_fmt", "yuv420p", "-threads", "1",
        "-x264-params", "threads=1:lookahead-threads=1:sliced-threads=0"]
AAC = ["-c:a", "aac", "-b:a", "64k", "-ac", "1"]


def still_video(path, wav, seconds, size=(160, 90)):
    """``wav`` under a plain grey 25 fps picture (H.264 + AAC), so the workflow treats it as a video."""
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    f"color=c=gray:s={size[0]}x{size[1]}:r=25:d={seconds:.2f}", "-i", str(wav), "-map", "0:v",
                    "-map", "1:a", *X264, "-crf", "30", *AAC, "-t", f"{seconds:.2f}", *BITEXACT, "-f", "mp4",
                    str(path)], check=True, capture_output=True)
