"""Step 7: schema validation with precise messages, and the SHA-256 archive (idempotent, verifiable)."""

import datetime
import json
import subprocess

import pytest
from conftest import ROOT
from steps.finalize import build_metadata, load_schema, validate_file, write_archive
from vidflow.errors import UserError

SCHEMAS = ROOT / "schemas"
T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


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
    assert sorted(p.name for p in root.iterdir()) == ["f" * 64], "no temporary folders left"


def test_optional_outputs_add_to_the_validated_and_archived_files():
    """rules/finalize.smk appends ``--validate``/``--archive-as`` for optional steps (expressions.json)."""
    import finalize as cli

    args = cli.build_parser().parse_args(
        ["--video", "v", "--project", "p", "--manifest", "m", "--converted", "c", "--schemas", "s",
         "--config-json", "{}", "--env-files", "e.yaml", "--snakemake-version", "9", "--archive-root", "a",
         "--validate", "scenes=s.json", "tracking=t.json", "--archive-as", "v_scenes.csv=s.csv",
         "--receipt", "r", "--validate", "expressions=x.json", "--archive-as", "v_expressions.json=x.json"])
    assert args.validate == [("scenes", "s.json"), ("tracking", "t.json"), ("expressions", "x.json")]
    assert args.archive_as == [("v_scenes.csv", "s.csv"), ("v_expressions.json", "x.json")]
