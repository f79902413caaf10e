"""Step 7: schema validation with precise messages, and the SHA-256 archive (idempotent, verifiable)."""

import datetime
import errno
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys

import jsonschema
import pytest

from conftest import ROOT, SEED, covers, shape
from steps.finalize import (
    SEED_COPIED,
    archive_plan,
    build_metadata,
    finalize_video,
    load_schema,
    streamed_arrays,
    validate_file,
    write_archive,
)
from vidflow.errors import UserError
from vidflow.sure_valid import plainly_valid, sure_check

SCHEMAS = ROOT / "schemas"
T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@pytest.mark.parametrize("schema_file", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.stem)
def test_every_schema_is_valid_json_schema(schema_file):
    schema = load_schema(schema_file)
    assert schema["$id"] == schema_file.name and (schema.get("description") or schema.get("title"))


def test_validation_names_file_pointer_and_rule(tmp_path):
    bad = tmp_path / "x_audio.json"
    bad.write_text(json.dumps({"frames_analysis": [{"frame": 1, "audio_info": {
        "is_speech_present": "yes", "active_speaker_labels": []}}]}))
    with pytest.raises(UserError) as err:
        validate_file(bad, load_schema(SCHEMAS / "reduced_audio.schema.json"))
    message = str(err.value)
    assert message.startswith(f"{bad}: /frames_analysis/0/audio_info/is_speech_present: violates 'type'")
    assert "reduced_audio.schema.json" in message and "\n" not in message
    missing = tmp_path / "y_audio.json"
    missing.write_text(json.dumps({"frames_analysis": [{"frame": 1}]}))
    with pytest.raises(UserError, match=r"/frames_analysis/0: violates 'required'.*'audio_info' is a required"):
        validate_file(missing, load_schema(SCHEMAS / "reduced_audio.schema.json"))
    broken = tmp_path / "z.json"
    broken.write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        validate_file(broken, load_schema(SCHEMAS / "reduced_audio.schema.json"))


def finalize_diarization(tmp_path, segments):
    """finalize_video on a record, the converted video and a diarization.json of ``segments``."""
    record = {"project": "p", "video": "clip", "original_name": "clip.mp4", "member": "clip.mp4", "sha256": "ab" * 32,
              "bytes": 10, "duration": 5.0, "source": {"kind": "archive", "name": "a.zip"}}
    (tmp_path / "source.json").write_text(json.dumps(record))
    (tmp_path / "video.mp4").write_bytes(b"converted")
    diarization = tmp_path / "diarization.json"
    diarization.write_text(json.dumps({"duration": 5.0, "backend": "hand", "segments": segments,
                                       "speakers": list(dict.fromkeys(s["speaker"] for s in segments))}))
    return finalize_video(video="clip", project="p", source_path=tmp_path / "source.json",
                          converted=tmp_path / "video.mp4",
                          json_inputs={"diarization": (diarization, "diarization.schema.json", None)},
                          schema_dir=SCHEMAS, extra_files={}, config={}, environments={}, snakemake_version="9.27.1",
                          archive_root=tmp_path / "archive", receipt=tmp_path / "archive.json")


def test_speakers_may_overlap_each_other_but_not_themselves(tmp_path):
    two = [{"start": 0.5, "end": 3.0, "speaker": "SPEAKER_00"}, {"start": 2.0, "end": 4.0, "speaker": "SPEAKER_01"},
           {"start": 3.0, "end": 4.5, "speaker": "SPEAKER_00"}]  # touching its own segment is not overlapping it
    assert (tmp_path / "archive" / finalize_diarization(tmp_path, two)).is_dir()
    again = tmp_path / "again"
    again.mkdir()
    own = [*two[:2], {"start": 2.5, "end": 4.5, "speaker": "SPEAKER_00"}]
    with pytest.raises(UserError) as err:
        finalize_diarization(again, own)
    assert str(err.value) == (f"{again / 'diarization.json'}: segments of SPEAKER_00 overlap (0.5-3.0 s and 2.5-4.5 s):"
                              " one speaker's segments must be merged")
    assert not (again / "archive").exists()


def full_load_message(path, schema):
    """The message of the old validation: the whole document loaded, best_match over all its errors."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(
        json.loads(path.read_text())))
    return None if error is None else (f"{path}: /{'/'.join(str(p) for p in error.absolute_path)}: violates "
                                       f"'{error.validator}' of {schema['$id']}: {error.message}")


def faces_json(frames=6):
    face = {"track_id": 1, "bbox": [1.0, 2.0, 30.0, 40.0], "score": 0.9, "speaking": False, "speaker": None,
            "landmarks": [[1.5 + i, 2.5, -0.1] for i in range(478)]}
    return {"fps": 25, "width": 320, "height": 180, "frame_count": frames, "engine": "mediapipe", "device": "cpu",
            "frames": [{"frame": f, "faces": [face] if f % 2 else []} for f in range(frames)]}


BREAKS = {
    "valid": lambda d: None,
    "landmark": lambda d: d["frames"][3]["faces"][0]["landmarks"][17].__setitem__(1, "x"),
    "two frames": lambda d: (d["frames"][5]["faces"][0].pop("bbox"), d["frames"][1].__setitem__("frame", -1)),
    "header and frame": lambda d: (d.__setitem__("width", 0), d["frames"][3]["faces"][0].__setitem__("score", 2)),
    "deep header": lambda d: (d.__setitem__("engine", 5), d["frames"][1]["faces"][0].__setitem__("track_id", "a")),
    "frames not a list": lambda d: d.__setitem__("frames", {"0": []}),
    "no frames": lambda d: d.pop("frames"),
    "frame not an object": lambda d: d["frames"].__setitem__(2, 7),
    "landmark of 4 numbers": lambda d: d["frames"][1]["faces"][0]["landmarks"][0].append(1.0),
    "landmark of 1 number": lambda d: d["frames"][1]["faces"][0]["landmarks"].__setitem__(9, [1.0]),
    "boolean coordinate": lambda d: d["frames"][5]["faces"][0]["landmarks"][477].__setitem__(2, True),
    "landmarks not a list": lambda d: d["frames"][3]["faces"][0].__setitem__("landmarks", {"0": [1, 2]}),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_streamed_validation_says_what_the_full_load_said(tmp_path, name):
    """Frames are validated one at a time; the message (pointer incl. frame index, rule, schema) is unchanged."""
    schema = load_schema(SCHEMAS / "tracking.schema.json")
    data = faces_json()
    BREAKS[name](data)
    path = tmp_path / "faces.json"
    path.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")))
    want = full_load_message(path, schema)
    if want is None:
        header = validate_file(path, schema)
        assert header == {**data, "frames": []}  # the members, with the frames not kept in memory
    else:
        with pytest.raises(UserError) as err:
            validate_file(path, schema)
        assert str(err.value) == want


def test_plain_numeric_arrays_take_the_fast_path_only_when_valid():
    point = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3}
    landmarks = {"type": "array", "items": point}
    assert plainly_valid(landmarks, [[1, 2.5], [0.0, -1, 3e9]]) and plainly_valid(landmarks, [])
    for bad in ([[1]], [[1, 2, 3, 4]], [[1, True]], [[1, "2"]], [[1, None]], [(1, 2)], {"0": [1, 2]}, [1, 2]):
        assert not plainly_valid(landmarks, bad), bad
    assert not plainly_valid({**point, "items": {"type": "number", "minimum": 0}}, [1, 2])  # other keywords: no
    assert not plainly_valid({"type": "integer"}, 1) and not plainly_valid({"type": "array", "uniqueItems": True}, [])


def mutations(value, rng, count):
    """``count`` copies of ``value`` with one random change each: a member or item replaced by an odd value, dropped,
    or a member added."""
    odd = [None, True, False, 0, 1, -1, 1.0, 2.5, -0.5, float("nan"), 10 ** 20, "", "x", "12:00", [], [1.0], {}]
    for _ in range(count):
        copy = json.loads(json.dumps(value))
        parent, key = None, None
        node = copy
        while isinstance(node, (dict, list)) and node and rng.random() < 0.8:
            parent, key = node, rng.choice(sorted(node) if isinstance(node, dict) else range(len(node)))
            node = parent[key]
        if parent is None:
            yield odd[rng.randrange(len(odd))]
            continue
        change = rng.random()
        if change < 0.7:
            parent[key] = odd[rng.randrange(len(odd))]
        elif change < 0.85:
            del parent[key]
        elif isinstance(parent, dict):
            parent["zz_extra"] = 1
        yield copy


@pytest.mark.parametrize("name, member, example", [("tracking", "frames", None),
                                                   ("reduced_audio", "frames_analysis", "example_audio.json"),
                                                   ("reduced_tracking", "frames_analysis", "example_tracking.json")])
def test_sure_check_passes_valid_items_and_nothing_jsonschema_rejects(name, member, example):
    """The fast path of finalize's streamed validation: True only where jsonschema finds no error, and True on the
    valid items of real files (else it saves nothing)."""
    schema = load_schema(SCHEMAS / f"{name}.schema.json")
    items_schema = streamed_arrays(schema)[member]
    sure, validator = sure_check(items_schema), jsonschema.Draft202012Validator(items_schema)
    items = faces_json()["frames"] if example is None else json.loads((SEED / example).read_text())[member][:50]
    assert items and all(sure(item) for item in items)
    rng, rejected = random.Random(5), 0
    for item in items[:10]:
        for changed in mutations(item, rng, 300):
            valid = not any(validator.iter_errors(changed))
            assert valid or not sure(changed), changed
            rejected += not valid
    assert rejected > 300  # the changes do break items


def test_sure_check_knows_only_the_keywords_it_can_judge():
    assert sure_check({"type": "array", "uniqueItems": True}) is None and sure_check({"enum": [1]}) is None
    assert sure_check({"properties": {"a": {"type": "integer", "multipleOf": 2}}}) is None
    check = sure_check({"type": ["integer", "null"], "minimum": 0})
    assert check(3) and check(None) and not check(-1) and not check(True) and not check(1.0)  # 1.0: not sure
    assert sure_check({"type": "string", "pattern": "^S"})("SPEAKER_00") and not sure_check({"pattern": "^S"})("A")


def test_only_arrays_whose_schema_constrains_each_item_alone_are_streamed():
    assert list(streamed_arrays(load_schema(SCHEMAS / "tracking.schema.json"))) == ["frames"]
    assert list(streamed_arrays(load_schema(SCHEMAS / "reduced_audio.schema.json"))) == ["frames_analysis"]
    schema = {"type": "object", "properties": {"frames": {"type": "array", "items": {}, "minItems": 1}}}
    assert streamed_arrays(schema) == {}
    assert streamed_arrays({**schema, "properties": {"frames": {"type": "array", "items": {}}},
                            "anyOf": [{"required": ["frames"]}]}) == {}


def test_a_document_that_is_no_object_gets_the_schemas_message(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1]")
    schema = load_schema(SCHEMAS / "tracking.schema.json")
    with pytest.raises(UserError) as err:
        validate_file(path, schema)
    assert str(err.value) == full_load_message(path, schema)


def make_files(tmp_path, text="a"):
    (tmp_path / "src").mkdir(exist_ok=True)
    files = {}
    for name in ("clip_tracking.json", "clip_scenes.csv"):
        (tmp_path / "src" / name).write_text(f"{name}:{text}\n")
        files[name] = tmp_path / "src" / name
    return files


def metadata(crf=20):
    source = {"original_name": "clip one.mp4", "member": "dir/clip one.mp4", "sha256": "ab" * 32, "archive": "a.zip"}
    return build_metadata(video="clip", project="p", source=source, converted_sha256="cd" * 32,
                          config={"convert": {"crf": crf}}, steps={}, environments={}, snakemake_version="9.27.1",
                          files=["clip_scenes.csv", "clip_tracking.json"])


def test_archive_is_verifiable_and_idempotent(tmp_path):
    root = tmp_path / "archive"
    assert write_archive(root, "f" * 64, make_files(tmp_path), metadata(), now=T0)
    folder = root / ("f" * 64)
    assert sorted(p.name for p in folder.iterdir()) == ["MANIFEST.sha256", "clip_scenes.csv", "clip_tracking.json",
                                                        "metadata.json"]
    subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=folder, check=True)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["created_at"] == "2026-01-02T03:04:05+00:00" and meta["source"]["member"] == "dir/clip one.mp4"
    assert not any(str(tmp_path) in line for line in (folder / "metadata.json").read_text().splitlines())
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}
    later = T0 + datetime.timedelta(days=1)
    assert not write_archive(root, "f" * 64, make_files(tmp_path), metadata(), now=later)
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()} == before
    # a changed parameter: same folder, new content and provenance, new created_at
    assert write_archive(root, "f" * 64, make_files(tmp_path, "b"), metadata(crf=23), now=later)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["config"] == {"convert": {"crf": 23}} and meta["created_at"].startswith("2026-01-03")
    subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=folder, check=True)
    assert sorted(p.name for p in root.iterdir()) == [".lock", "f" * 64], "no temporary folders left"


KILLED_WHILE_COPYING = """import json, os, shutil, signal, sys
from steps.finalize import write_archive
copy = shutil.copyfile
def copy_then_die(src, dst):
    copy(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)
shutil.copyfile = copy_then_die
write_archive(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4]))
"""


def test_archive_removes_what_a_killed_finalize_left_of_the_same_archive_only(tmp_path, monkeypatch):
    root, sha, other = tmp_path / "archive", "f" * 64, "e" * 64
    files = {name: str(path) for name, path in make_files(tmp_path).items()}
    proc = subprocess.run([sys.executable, "-c", KILLED_WHILE_COPYING, str(root), sha, json.dumps(files),
                           json.dumps(metadata())], env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")},
                          check=False)
    assert proc.returncode == -signal.SIGKILL
    staged = [p for p in root.iterdir() if p.name.startswith(f".{sha}.")]
    assert len(staged) == 1 and len(list(staged[0].iterdir())) == 1, "the killed run left a staging folder"
    retired = root / f".{sha}.old.ab_cd123" / sha  # as if killed while swapping in a new version
    retired.mkdir(parents=True)
    for name in (f".{other}.k2j4h1x0", f".{sha}.k2j4h1x0.d"):  # another archive's, and not a temporary name
        (root / name).mkdir()

    def no_locks(*_):
        raise OSError(errno.ENOSYS, "Function not implemented")

    with monkeypatch.context() as patch:  # without a lock another writer may be staging: nothing is removed
        patch.setattr(fcntl, "flock", no_locks)
        assert write_archive(root, sha, make_files(tmp_path), metadata(), now=T0)
    assert staged[0].exists() and retired.exists()
    shutil.rmtree(root / sha)
    assert write_archive(root, sha, make_files(tmp_path), metadata(), now=T0)
    assert sorted(p.name for p in root.iterdir()) == sorted([f".{other}.k2j4h1x0", ".lock", f".{sha}.k2j4h1x0.d", sha])
    subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=root / sha, check=True)


def archive_one_video(tmp_path, member="dir/clip one.mp4"):
    """finalize_video on a record and the three files the old system copied; returns (folder, metadata)."""
    record = {"project": "p", "video": "clip", "original_name": member.rsplit("/", 1)[-1], "member": member,
              "sha256": "ab" * 32, "bytes": 10, "duration": 1.0, "source": {"kind": "archive", "name": "a.zip"}}
    (tmp_path / "source.json").write_text(json.dumps(record))
    (tmp_path / "video.mp4").write_bytes(b"converted")
    extra = {f"clip{suffix}": tmp_path / f"clip{suffix}" for suffix in SEED_COPIED.values()}
    for path in extra.values():
        path.write_text(path.name)
    sha = finalize_video(video="clip", project="p", source_path=tmp_path / "source.json",
                         converted=tmp_path / "video.mp4", json_inputs={}, schema_dir=SCHEMAS, extra_files=extra,
                         config={}, environments={}, snakemake_version="9.27.1", archive_root=tmp_path / "archive",
                         receipt=tmp_path / "archive.json")
    folder = tmp_path / "archive" / sha
    return folder, json.loads((folder / "metadata.json").read_text())


@pytest.mark.skipif(not SEED.is_dir(), reason="needs ../shared/reference (the seed's real outputs)")
def test_metadata_has_the_old_systems_keys_with_their_meaning(tmp_path):
    seed = json.loads((SEED / "metadata.json").read_text())
    folder, ours = archive_one_video(tmp_path)
    jsonschema.validate(ours, load_schema(SCHEMAS / "metadata.schema.json"))
    covers(shape(ours), shape(seed))
    # video_hash: the SHA-256 the archive folder is named after (the seed's copied files lie in that folder)
    assert all(path.split("/")[-2] == seed["video_hash"] for path in seed["copied"].values())
    assert ours["video_hash"] == folder.name == ours["converted_sha256"]
    # video_stem: the original file name without its extension; video_path: where the video was (relative here)
    assert seed["video_stem"] == seed["video_path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    assert ours["video_stem"] == "clip one" and ours["video_path"] == "dir/clip one.mp4"
    # copied: the same kinds, each the archived file of that kind (relative to the archive folder, not absolute)
    assert sorted(ours["copied"]) == sorted(seed["copied"]) == sorted(SEED_COPIED)
    for kind, suffix in SEED_COPIED.items():
        assert seed["copied"][kind].endswith(f"{seed['video_stem']}{suffix}")
        assert ours["copied"][kind] == f"clip{suffix}" and (folder / ours["copied"][kind]).is_file()
    assert datetime.datetime.fromisoformat(ours["created_at"]).tzinfo is not None
    assert datetime.datetime.fromisoformat(seed["created_at"]).tzinfo is not None
    # our own keys stay
    assert ours["original_name"] == "clip one.mp4" and ours["files"] == sorted(f"clip{s}" for s in SEED_COPIED.values())


def test_metadata_that_breaks_its_schema_is_not_archived(tmp_path):
    with pytest.raises(UserError, match=r"metadata.json: /video_path: violates 'pattern' of metadata.schema.json"):
        archive_one_video(tmp_path, member="/abs/clip.mp4")
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [".lock"]


def test_optional_outputs_add_to_the_validated_and_archived_files():
    """rules/finalize.smk adds an optional step's output (expressions.json) to the job's named inputs: it is validated
    and archived like the others."""
    json_inputs, extra = archive_plan({"scenes": "s.json", "tracking": "t.json", "scenes_csv": "s.csv",
                                       "expressions": "x.json"}, "v")
    archived = {**extra, **{name: path for path, _, name in json_inputs.values() if name}}
    assert [(schema, path) for schema, (path, _, _) in json_inputs.items()] == [
        ("scenes", "s.json"), ("tracking", "t.json"), ("expressions", "x.json")]
    assert sorted(archived.items()) == sorted([("v_scenes.csv", "s.csv"), ("v_expressions.json", "x.json")])


def test_the_rules_inputs_are_validated_by_their_schema_and_archived_under_the_old_names():
    """The finalize job's named inputs (rules/finalize.smk) say what is validated against which schema and what is
    archived under which name (what the rule's --validate/--archive-as pairs said before)."""
    names = ("source", "video", "info", "scenes", "scenes_csv", "diarization", "rttm", "tracking", "speakers",
             "reduced_tracking", "reduced_audio")
    json_inputs, extra = archive_plan({name: f"{name}.x" for name in names}, "v")
    assert {schema: path for schema, (path, _, _) in json_inputs.items()} == {
        "source": "source.x", "video": "info.x", "scenes": "scenes.x", "diarization": "diarization.x",
        "tracking": "tracking.x", "speakers": "speakers.x", "reduced_tracking": "reduced_tracking.x",
        "reduced_audio": "reduced_audio.x"}
    assert all((SCHEMAS / schema_file).is_file() for _, schema_file, _ in json_inputs.values())
    archived = {**extra, **{name: path for path, _, name in json_inputs.values() if name}}
    assert archived == {"v_tracking.json": "reduced_tracking.x", "v_audio.json": "reduced_audio.x",
                        "v_scenes.csv": "scenes_csv.x", "v_diarization.rttm": "rttm.x"}
    assert extra == {"v_scenes.csv": "scenes_csv.x", "v_diarization.rttm": "rttm.x"}
