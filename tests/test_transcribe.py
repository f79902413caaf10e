"""Optional step transcribe: words -> speakers -> faces. Pure parts unit-tested; both engines run end to end in the
step's env (pocketsphinx with the model in its wheel; faster-whisper with a tiny random-weights model built here by
tools/tiny_whisper.py through CTranslate2's converter and Whisper's real vocabulary).

Speech: two espeak-ng voices at known times (the diarization handed to the step is that truth, so the speaker of
every word is checkable), and real read speech: the LibriVox reader of pocketsphinx 5.1.1's test data (five
utterances with their reference text, the dev set's en_reader), scored with jiwer.
"""

import json
import subprocess

import pytest
from media_clips import make_video
from media_shots import Shot
from media_speech import layout_turns, make_speech, write_wav

from conftest import ROOT, VENV_DIR, require_binaries, schema_defaults
from steps.transcript import assign_speakers, build_segments, cues, inside, speech_stretches, word_tracks
from vidflow.job import job_command

LINES = [("en-us+m3", "Welcome to the show. We are glad you could join us today."),
         ("en+f3", "Thank you for having me. It is a pleasure to be here."),
         ("en-us+m3", "Tell us about your journey into space and the long flight home."),
         ("en+f3", "It was amazing. The earth looked small and very blue from up there.")]
SPEAKERS = {"en-us+m3": "SPEAKER_00", "en+f3": "SPEAKER_01"}
CACHE = ROOT / "resources" / "real_media" / "cache"


def W(start, end, text="w", probability=0.9):  # noqa: N802 - a word, as the engines return it
    return {"start": start, "end": end, "text": " " + text, "probability": probability}


def T(start, end, speaker):  # noqa: N802 - a diarization turn
    return {"start": start, "end": end, "speaker": speaker}


# --- pure parts ---

def test_words_go_to_the_speaker_they_overlap_most():
    turns = [T(0.0, 2.0, "A"), T(2.0, 4.0, "B")]
    words = [W(0.5, 0.9), W(1.5, 2.2), W(1.9, 2.6), W(3.9, 4.1)]
    assert assign_speakers(words, turns) == ["A", "A", "B", "B"]
    # overlapping turns (pyannote): the longer overlap wins; a tie goes to the speaker first in order
    # (a speaker's own overlapping turns count once: A covers 0.3 s of the first word, not 0.5)
    overlapping = [T(0.0, 1.5, "A"), T(1.0, 3.0, "B"), T(1.2, 1.4, "A")]
    assert assign_speakers([W(1.2, 1.6), W(0.9, 1.1), W(1.0, 1.3)], overlapping) == ["B", "A", "A"]
    assert assign_speakers([W(1.0, 1.3)], overlapping, order=["B", "A"]) == ["B"]
    assert assign_speakers([W(1.0, 1.0)], [T(0.5, 1.5, "B")]) == ["B"]  # a zero-length word inside a turn


def test_words_in_gaps_go_to_the_nearest_turn():
    turns = [T(0.0, 2.0, "A"), T(5.0, 6.0, "B"), T(9.0, 9.5, "A")]
    assert assign_speakers([W(2.1, 2.3), W(4.5, 4.8), W(7.0, 7.4), W(7.6, 8.0)], turns) == ["A", "B", "B", "A"]
    assert assign_speakers([W(10.0, 10.2)], turns) == ["A"]  # after the last turn
    assert assign_speakers([W(0.0, 0.1)], [T(1.0, 2.0, "B"), T(3.0, 4.0, "A")]) == ["B"]  # before the first
    # the turn ending last counts as "before", even when an earlier-starting turn is longer
    assert assign_speakers([W(6.2, 6.4)], [T(0.0, 6.0, "A"), T(1.0, 3.0, "B"), T(7.0, 8.0, "B")]) == ["A"]
    assert assign_speakers([W(3.0, 3.2)], [T(0.0, 2.0, "A"), T(4.2, 5.0, "B")]) == ["A"]  # equal gaps: order
    assert assign_speakers([W(1.0, 1.2)], []) == [None]


def test_a_word_gets_the_linked_face_on_screen_while_it_is_said():
    linked = {f: [(1, "A")] for f in range(0, 50)} | {f: [(1, "A"), (4, "B")] for f in range(50, 75)}
    linked |= {f: [(7, "A")] for f in range(60, 100)}
    words, speakers = [W(0.4, 0.8), W(2.0, 2.4), W(2.0, 2.4), W(3.2, 3.6), W(4.2, 4.6), W(1.0, 1.01)], \
        ["A", "B", "A", "A", "C", None]
    # frames [start*25, end*25): word 3 (frames 80-89) sees track 7; speaker C has no face; no speaker, no face
    assert word_tracks(words, speakers, linked, 25) == [1, 4, 1, 7, None, None]
    assert word_tracks([W(1.0, 1.01)], ["A"], linked, 25) == [1]  # shorter than a frame: the nearest frame
    assert word_tracks([W(1.8, 2.6)], ["A"], linked, 25) == [1]  # frames 45-64: track 1 in 15, track 7 in 5
    tie = {10: [(3, "A"), (2, "A")]}
    assert word_tracks([W(0.4, 0.44)], ["A"], tie, 25) == [2]


def test_speech_stretches_merge_short_gaps_pad_and_clip():
    turns = [T(0.1, 1.0, "A"), T(1.5, 2.0, "B"), T(5.0, 9.9, "A")]
    assert speech_stretches(turns, 10.0, pad=0.2, max_gap=1.0) == [(0.0, 2.2), (4.8, 10.0)]
    assert speech_stretches(turns, 10.0, pad=0.0, max_gap=0.0) == [(0.1, 1.0), (1.5, 2.0), (5.0, 9.9)]
    assert speech_stretches([], 10.0, 0.2, 1.0) == []
    assert speech_stretches(turns, 0.0, 0.2, 1.0) == []  # no audio


def test_words_outside_the_transcribed_stretches_are_dropped_and_clipped():
    stretches = [(1.0, 2.0), (5.0, 6.0)]
    words = [W(0.2, 0.6), W(0.9, 1.3), W(1.8, 2.1), W(1.9, 2.4), W(3.0, 3.5), W(5.9, 28.0), W(5.5, 5.7)]
    kept = inside(words, stretches)
    assert [(w["start"], w["end"]) for w in kept] == [(1.0, 1.3), (1.8, 2.0), (5.5, 5.7)]


def test_segments_split_where_the_speaker_changes_and_carry_words():
    turns = [T(0.0, 2.0, "A"), T(2.0, 4.0, "B")]
    pieces = [[W(0.1, 0.5, "Hello"), W(0.6, 1.0, "there,"), W(2.2, 2.6, "hi"), {**W(2.7, 2.9), "text": "  "}],
              [W(3.0, 3.4, "again.", 0.123456)]]
    linked = {f: [(3, "B")] for f in range(55, 100)}
    segments = build_segments(pieces, turns, linked, 25.0)
    assert [(s["speaker"], s["text"], s["track_id"], len(s["words"])) for s in segments] == \
        [("A", "Hello there,", None, 2), ("B", "hi", 3, 1), ("B", "again.", 3, 1)]
    assert segments[2]["words"][0] == {"start": 3.0, "end": 3.4, "word": "again.", "probability": 0.123,
                                       "speaker": "B", "track_id": 3}
    assert (segments[0]["start"], segments[0]["end"]) == (0.1, 1.0)


def test_cues_are_cut_at_word_boundaries():
    words = [{"start": i * 0.5, "end": i * 0.5 + 0.4, "word": f"word{i:02d}"} for i in range(30)]
    got = cues([{"speaker": "A", "words": words}], max_seconds=7.0, max_chars=84)
    assert all(end - start <= 7.0 and len(text) <= 84 for start, end, _, text in got)
    assert " ".join(text for *_, text in got) == " ".join(w["word"] for w in words)
    assert got[0][:3] == (0.0, 5.9, "A")  # 12 six-letter words: 83 characters, a 13th would make 90


# --- the step, end to end in its env ---

def env_python():
    python = VENV_DIR / "transcribe" / "bin" / "python"
    if not python.exists():
        from build_env import build

        build(ROOT / "envs" / "transcribe.yaml", VENV_DIR / "transcribe")
    return python


def write_inputs(folder, turns, duration, linked=None):
    """diarization.json from the truth turns; faces.json/speakers.json with ``linked`` {speaker: (track, frames)}."""
    names = list(dict.fromkeys(t["speaker"] for t in turns))
    diarization = {"duration": duration, "backend": "truth", "speakers": names,
                   "segments": [{k: t[k] for k in ("start", "end", "speaker")} for t in turns]}
    frames = []
    for frame in range(int(duration * 25)):
        faces = [{"track_id": track, "bbox": [0, 0, 10, 10], "score": 1.0, "speaking": False, "speaker": speaker}
                 for speaker, (track, shown) in (linked or {}).items() if frame in shown]
        frames.append({"frame": frame, "faces": faces})
    faces = {"fps": 25, "width": 320, "height": 180, "frame_count": len(frames), "frames": frames}
    speakers = {"fps": 25, "frame_count": len(frames), "settings": {}, "tracks": [],
                "speakers": [{"speaker": s, "tracks": [linked[s][0]] if linked and s in linked else []}
                             for s in names]}
    for name, data in (("diarization", diarization), ("faces", faces), ("speakers", speakers)):
        (folder / f"{name}.json").write_text(json.dumps(data))


def run_step(video, folder, check=True, **settings):
    out = {"json": folder / "transcript.json", "vtt": folder / "transcript.vtt", "srt": folder / "transcript.srt"}
    inputs = {"video": video, **{n: folder / f"{n}.json" for n in ("diarization", "faces", "speakers")}}
    command = job_command(env_python(), ROOT / "scripts" / "transcribe.py", inputs, out,
                          schema_defaults("transcribe", **settings), threads=2, log=folder / "transcribe.log")
    proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if check:
        assert proc.returncode == 0, (folder / "transcribe.log").read_text()[-3000:]
        return json.loads(out["json"].read_text())
    return proc


def validate(transcript):
    import jsonschema

    jsonschema.validate(transcript, json.loads((ROOT / "schemas" / "transcript.schema.json").read_text()))


def all_words(transcript):
    return [w for s in transcript["segments"] for w in s["words"]]


def word_error_rate(references, hypotheses):
    """jiwer's WER (in the step's env), after lower-casing and removing punctuation."""
    code = ("import jiwer, json, sys; r, h = json.load(sys.stdin); t = jiwer.Compose([jiwer.ToLowerCase(), "
            "jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip(), "
            "jiwer.ReduceToListOfListOfWords()]); "
            "print(jiwer.wer(r, h, reference_transform=t, hypothesis_transform=t))")
    proc = subprocess.run([str(env_python()), "-c", code], input=json.dumps([references, hypotheses]),
                          capture_output=True, text=True, check=True)
    return float(proc.stdout)


@pytest.fixture(scope="session")
def dialogue(tmp_path_factory):
    """An espeak dialogue clip with a face linked to each speaker (SPEAKER_01's only in the first 8 s)."""
    require_binaries("ffmpeg", "espeak-ng")
    folder = tmp_path_factory.mktemp("transcribe_dialogue")
    turns = layout_turns(LINES, start=0.5, gap=1.5)
    duration = round(turns[-1][0] + 5, 1)
    truth = make_speech(folder / "speech.wav", turns, duration)["segments"]
    for segment in truth:
        segment["speaker"] = SPEAKERS[segment["speaker"]]
    video = folder / "talk.mp4"
    make_video(video, [Shot("blank", int(round(duration * 25)))], audio=folder / "speech.wav")
    frames = range(int(duration * 25))
    write_inputs(folder, truth, duration, {"SPEAKER_00": (1, set(frames)), "SPEAKER_01": (2, set(frames[:200]))})
    return video, folder, truth


def truth_speaker(word, truth):
    middle = (word["start"] + word["end"]) / 2
    return min(truth, key=lambda t: max(t["start"] - middle, middle - t["end"], 0))["speaker"]


def check_words(transcript, truth):
    """Every word inside a transcribed stretch, with the diarized speaker, and the linked face where shown."""
    speech = [(s["start"], s["end"]) for s in transcript["speech"]]
    words = all_words(transcript)
    assert words
    for word in words:
        assert any(start <= word["start"] <= word["end"] <= end for start, end in speech), word
        assert word["speaker"] == truth_speaker(word, truth), word
        expected = 1 if word["speaker"] == "SPEAKER_00" else (2 if word["start"] * 25 < 199 else None)
        assert word["track_id"] == expected, word
    return words


def test_pocketsphinx_transcribes_espeak_dialogue_with_speakers_and_faces(dialogue):
    video, folder, truth = dialogue
    transcript = run_step(video, folder, engine="pocketsphinx")
    validate(transcript)
    assert transcript["engine"]["name"] == "pocketsphinx" and transcript["engine"]["device"] == "cpu"
    words = check_words(transcript, truth)
    assert {w["speaker"] for w in words} == {"SPEAKER_00", "SPEAKER_01"}
    assert transcript["speakers"][0] == {"speaker": "SPEAKER_00", "tracks": [1],
                                         "words": sum(w["speaker"] == "SPEAKER_00" for w in words)}
    # espeak's robotic voices are hard for the wheel's US English model, trained on real speech (measured WER 0.78;
    # "amazing", "your", "about" come through): accuracy is judged on real read speech below
    hypothesis = " ".join(w["word"] for w in words)
    assert word_error_rate([" ".join(t["text"] for t in truth)], [hypothesis]) < 0.9
    assert {"amazing", "about", "your"} <= set(hypothesis.split())
    vtt, srt = (folder / "transcript.vtt").read_text(), (folder / "transcript.srt").read_text()
    assert vtt.startswith("WEBVTT") and "<v SPEAKER_00>" in vtt and "<v SPEAKER_01>" in vtt
    assert "[SPEAKER_00] " in srt and "-->" in srt and srt.count("-->") == vtt.count("-->")
    first = transcript["segments"][0]
    assert f"<v {first['speaker']}>{' '.join(w['word'] for w in first['words'])}" in vtt
    before = [(folder / f"transcript.{ext}").read_bytes() for ext in ("json", "vtt", "srt")]
    run_step(video, folder, engine="pocketsphinx")
    assert [(folder / f"transcript.{ext}").read_bytes() for ext in ("json", "vtt", "srt")] == before


@pytest.fixture(scope="session")
def librivox(tmp_path_factory):
    """The five real LibriVox utterances of pocketsphinx 5.1.1's tests in one clip, 1 s of silence between them."""
    require_binaries("ffmpeg")
    from real_media_sources import FetchError, unpacked

    try:
        data = unpacked("pocketsphinx", CACHE) / "pocketsphinx-5.1.1" / "test" / "data" / "librivox"
    except FetchError as error:
        pytest.skip(f"PyPI cannot be reached: {error}")
    import wave

    import numpy as np

    folder = tmp_path_factory.mktemp("librivox")
    pieces, truth, t = [np.zeros(8000, np.int16)], [], 0.5
    for path in sorted(data.glob("*.wav")):
        with wave.open(str(path)) as handle:
            assert handle.getframerate() == 16000 and handle.getnchannels() == 1
            samples = np.frombuffer(handle.readframes(handle.getnframes()), np.int16)
        truth.append({"start": round(t, 3), "end": round(t + len(samples) / 16000, 3), "speaker": "SPEAKER_00",
                      "text": path.with_suffix(".txt").read_text().strip()})
        pieces += [samples, np.zeros(16000, np.int16)]
        t += len(samples) / 16000 + 1
    write_wav(folder / "read.wav", np.concatenate(pieces), 16000)
    duration = sum(len(p) for p in pieces) / 16000
    video = folder / "read.mp4"
    make_video(video, [Shot("blank", int(duration * 25))], audio=folder / "read.wav")
    write_inputs(folder, truth, duration)
    return video, folder, truth


def test_pocketsphinx_on_real_read_speech(librivox):
    """Measured: WER 0.28 on these 129 words (the utterances decoded alone: 0.28 too)."""
    video, folder, truth = librivox
    transcript = run_step(video, folder, engine="pocketsphinx")
    validate(transcript)
    words = all_words(transcript)
    for turn in truth:  # each utterance's words lie inside it (pocketsphinx frames are 10 ms; the pad is 0.2 s)
        said = [w for w in words if turn["start"] - 0.2 <= w["start"] < turn["end"] + 0.2]
        assert said and all(w["end"] <= turn["end"] + 0.2 for w in said)
    wer = word_error_rate([t["text"] for t in truth],
                          [" ".join(w["word"] for w in words if t["start"] - 0.2 <= w["start"] < t["end"] + 0.2)
                           for t in truth])
    assert wer <= 0.35, wer


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_whisper") / "model"
    subprocess.run([str(env_python()), str(ROOT / "tools" / "tiny_whisper.py"), str(folder)], check=True,
                   capture_output=True)
    return folder


def test_tiny_whisper_model_runs_the_step_end_to_end(dialogue, tiny_whisper, tmp_path):
    video, folder, truth = dialogue
    work = tmp_path / "whisper"
    work.mkdir()
    for name in ("diarization", "faces", "speakers"):
        (work / f"{name}.json").write_bytes((folder / f"{name}.json").read_bytes())
    settings = {"model": str(tiny_whisper), "compute_type": "auto", "beam_size": 1}
    transcript = run_step(video, work, engine="whisper", whisper=settings)
    validate(transcript)
    engine = transcript["engine"]
    assert (engine["name"], engine["device"], engine["compute_type"]) == ("whisper", "cpu", "int8")
    assert engine["language"] == transcript["language"] and len(engine["language"]) in (2, 3)  # detected
    check_words(transcript, truth)  # random weights: nonsense words, but real times, speakers and faces
    before = (work / "transcript.json").read_bytes()
    run_step(video, work, engine="whisper", whisper=settings)
    assert (work / "transcript.json").read_bytes() == before


def test_a_missing_whisper_model_is_one_line_naming_the_folder(dialogue, tmp_path):
    video, folder, _ = dialogue
    for name in ("diarization", "faces", "speakers"):
        (tmp_path / f"{name}.json").write_bytes((folder / f"{name}.json").read_bytes())
    proc = run_step(video, tmp_path, check=False, engine="whisper",
                    whisper={"model": str(tmp_path / "nowhere"), "compute_type": "auto", "beam_size": 5})
    assert proc.returncode != 0
    assert f"{tmp_path / 'nowhere'}: no such model folder" in (tmp_path / "transcribe.log").read_text()
    assert not (tmp_path / "transcript.json").exists()


def test_a_video_without_audio_gets_an_empty_valid_transcript(tmp_path):
    require_binaries("ffmpeg")
    video = tmp_path / "silent.mp4"
    make_video(video, [Shot("blank", 50)])
    write_inputs(tmp_path, [], 2.0)
    transcript = run_step(video, tmp_path, engine="pocketsphinx")
    validate(transcript)
    assert (transcript["duration"], transcript["segments"], transcript["speech"], transcript["word_count"]) == \
        (0.0, [], [], 0)
    assert "has no audio: the transcript is empty" in (tmp_path / "transcribe.log").read_text()
    assert (tmp_path / "transcript.vtt").read_text().strip() == "WEBVTT"
    assert (tmp_path / "transcript.srt").read_text() == ""


# --- what the report shows (steps.report_pages.transcript_page, from reports/templates/transcript_page.html.j2) ---

def test_report_renders_the_transcript_speaker_coloured():
    from steps.report_pages import transcript_page
    from steps.transcript_report import PALETTE, clock, timeline_rows

    words = [{"start": 0.5, "end": 0.9, "word": "Bonjour", "probability": 0.9, "speaker": "SPEAKER_01",
              "track_id": 2},
             {"start": 1.0, "end": 1.4, "word": "<à>", "probability": 0.2, "speaker": "SPEAKER_01", "track_id": 2}]
    transcript = {"engine": {"name": "whisper", "device": "cuda"}, "language": "fr", "word_count": 3,
                  "speakers": [{"speaker": "SPEAKER_00"}, {"speaker": "SPEAKER_01"}],
                  "segments": [{"start": 0.5, "end": 1.4, "speaker": "SPEAKER_01", "track_id": 2, "words": words},
                               {"start": 62.0, "end": 62.3, "speaker": "SPEAKER_00", "track_id": None,
                                "words": [{**words[0], "word": "oui", "speaker": "SPEAKER_00", "track_id": None}]}]}
    page = transcript_page("Transcript: p / v", transcript)
    assert f'color:{PALETTE[1]};font-weight:bold">SPEAKER_01' in page and f'color:{PALETTE[0]}' in page
    assert "face 2" in page and "Bonjour" in page and "&lt;à&gt;" in page and "<à>" not in page
    assert 'opacity:0.55" title="p=0.20"' in page and "3 words (whisper on cuda, language fr)" in page
    assert "1:02.0" in page and clock(3725.25) == "1:02:05.2"
    assert '<p class="transcript-empty">No words transcribed (pocketsphinx on cpu).</p>' in \
        transcript_page("Transcript: p / v", {"engine": {"name": "pocketsphinx", "device": "cpu"}, "segments": []})
    assert timeline_rows(transcript) == [("SPEAKER_00", PALETTE[0], [(0.5, 0.9, "oui")]),
                                         ("SPEAKER_01", PALETTE[1], [(0.5, 0.9, "Bonjour"), (1.0, 1.4, "<à>")])]
