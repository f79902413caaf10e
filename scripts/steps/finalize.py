"""Step 7: validate every JSON output against its schema, then archive by the video's SHA-256.

``archive/<sha256>/`` holds the reduced files, ``<video>_scenes.csv``, ``<video>_diarization.rttm``,
``metadata.json`` (provenance; ``created_at`` is the only timestamp anywhere) and
``MANIFEST.sha256`` (``sha256sum -c`` format). Rewriting an identical archive writes nothing.
"""

import datetime
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import jsonschema

from vidflow.errors import UserError
from vidflow.io import dumps_json, exclusive_lock, read_json, remove_stale_temporaries, sha256_file, write_json
from vidflow.job import settings_from
from vidflow.jsonstream import Items, NotAnObject, read_members
from vidflow.sure_valid import plainly_valid, sure_check
from vidflow.turns import own_overlap

log = logging.getLogger("finalize")
PROVENANCE_KEYS = ("backend", "engine", "model", "models", "device", "encoder", "mode")


@dataclass(frozen=True)
class FinalizeSettings:
    """The ``finalize`` config section (keys and defaults: config/schema.yaml) and the provenance its rule adds
    (rules/provenance.smk)."""

    archive_dir: str  # archive/<sha256>/ folders go here
    schemas: str  # folder of *.schema.json
    config: dict  # the effective config of every step that produced the video
    environments: dict  # {env: {"conda": {package: version}, "pip": [pins]}} of those steps
    snakemake_version: str


# The finalize job's named inputs that are JSON outputs, each with the schema it must meet (schemas/<name>.schema.json;
# also its step's name in metadata.json's "steps"), in the order they are checked ...
VALIDATED_INPUTS = {"source": "source", "info": "video", "scenes": "scenes", "diarization": "diarization",
                    "tracking": "tracking", "speakers": "speakers", "reduced_tracking": "reduced_tracking",
                    "reduced_audio": "reduced_audio", "expressions": "expressions", "identity": "identity",
                    "transcript": "transcript"}
# ... and the named inputs that are archived, as ``<video><suffix>``.
ARCHIVED_INPUTS = {"reduced_tracking": "_tracking.json", "reduced_audio": "_audio.json", "scenes_csv": "_scenes.csv",
                   "rttm": "_diarization.rttm", "expressions": "_expressions.json", "identity": "_identity.json",
                   "transcript": "_transcript.json",
                   "transcript_vtt": "_transcript.vtt", "transcript_srt": "_transcript.srt",
                   # the research exports (rules/export.smk): ELAN, Praat, WebVTT, tables, the review video
                   "export_eaf": ".eaf", "export_textgrid": ".TextGrid", "export_vtt": ".vtt",
                   "export_faces_parquet": "_faces.parquet", "export_faces_csv": "_faces.csv",
                   "export_turns_parquet": "_turns.parquet", "export_turns_csv": "_turns.csv",
                   "export_review": "_review.mp4"}


def load_schema(path):
    schema = read_json(path)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


# A root schema of only these keywords checks a member with ``properties`` alone, so a top-level array whose schema
# has only these keywords (no minItems, uniqueItems, contains, ...) can be checked one item at a time.
STREAMABLE_ROOT = {"$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "type", "required",
                   "properties", "additionalProperties"}
STREAMABLE_ARRAY = {"$comment", "title", "description", "type", "items"}


def streamed_arrays(schema):
    """Top-level members whose items can be validated one at a time, ``{name: items schema}``."""
    if set(schema) - STREAMABLE_ROOT or schema.get("type") != "object":
        return {}
    return {name: sub["items"] for name, sub in schema.get("properties", {}).items()
            if isinstance(sub, dict) and sub.get("type") == "array" and isinstance(sub.get("items"), dict)
            and not set(sub) - STREAMABLE_ARRAY}


def _item_errors(validator, name, items, items_schema):
    """The errors :meth:`iter_errors` gives for the items of top-level array ``name``, with the same paths. Items that
    :func:`sure_check` passes have none, so jsonschema sees only the others."""
    sure = sure_check(items_schema) or (lambda item: False)
    for index, item in enumerate(items):
        if sure(item):
            continue
        for error in validator.descend(item, items_schema, path=index, schema_path="items"):
            error.path.appendleft(name)
            error.schema_path.extendleft((name, "properties"))  # as the root's ``properties`` adds
            yield error


def _streamed_errors(path, schema, validator):
    """``(header, errors)``: the document's members (streamed arrays emptied) and every validation error, reading the
    big arrays one item at a time."""
    arrays, header = streamed_arrays(schema), {}

    def errors():
        for name, value in read_members(path, tuple(arrays)):
            if isinstance(value, Items):
                header[name] = []
                yield from _item_errors(validator, name, value, arrays[name])
            else:
                header[name] = value
        yield from validator.iter_errors(header)
    return header, errors()


_ITEMS = jsonschema.Draft202012Validator.VALIDATORS["items"]


def _items(validator, items, instance, schema):
    """jsonschema's ``items`` with a fast path: arrays that :func:`plainly_valid` passes have no errors to report.

    Validating 478 landmarks x 3 numbers per face through jsonschema's generic machinery is ~2 ms per face; arrays
    that fail the fast check go through jsonschema as before (same errors, same messages).
    """
    if "prefixItems" not in schema and type(instance) is list and plainly_valid({"type": "array", "items": items},
                                                                                   instance):
        return
    yield from _ITEMS(validator, items, instance, schema)


Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"items": _items})


def validate_file(path, schema: dict) -> dict:
    """Raise UserError naming the file, the JSON pointer and the schema rule that broke.

    Returns the document's top-level members, with the arrays that were validated item by item (``frames``...)
    emptied: memory holds one item at a time, however long the video.
    """
    validator = Validator(schema)
    try:
        data, errors = _streamed_errors(path, schema, validator)
        error = jsonschema.exceptions.best_match(errors)
    except NotAnObject:  # valid JSON but no object: the schema says what is wrong with it
        data = read_json(path)
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    except (OSError, ValueError) as err:
        raise UserError(path, f"not valid JSON ({err})") from None
    if error is not None:
        raise schema_error(path, schema, error)
    return data


def schema_error(path, schema, error):
    """UserError: ``path``, the JSON pointer, the schema rule that broke and jsonschema's message."""
    pointer = "/" + "/".join(str(p) for p in error.absolute_path)
    return UserError(path, f"{pointer}: violates '{error.validator}' of {schema.get('$id', 'schema')}: "
                           f"{error.message}")


def step_provenance(outputs):
    """What each step used (backend/engine/model/device...), taken from its own output JSON."""
    return {step: {k: data[k] for k in PROVENANCE_KEYS if k in data} for step, data in sorted(outputs.items())}


# The old system's metadata.json: ``copied`` maps these kinds to the archived files named ``<video><suffix>``.
SEED_COPIED = {"scenes": "_scenes.csv", "audio": "_audio.json", "tracking": "_tracking.json"}


def build_metadata(*, video, project, source, converted_sha256, config, steps, environments, snakemake_version, files):
    """Provenance of one archived video (everything except ``created_at``).

    The old system's keys sit next to ours with the same meaning: ``video_hash`` names the archive folder,
    ``video_stem`` is the original file name without its extension, ``video_path`` the video's path inside its
    source (archive member, or file name in the input folder) and ``copied`` the archived files by kind, relative to
    the archive folder (never absolute paths).
    """
    copied = {kind: f"{video}{suffix}" for kind, suffix in SEED_COPIED.items() if f"{video}{suffix}" in files}
    return {"video": video, "project": project, "original_name": source["original_name"],
            "source": {"archive": source.get("archive"), "member": source["member"], "sha256": source["sha256"]},
            "converted_sha256": converted_sha256, "config": config, "steps": steps, "environments": environments,
            "snakemake_version": snakemake_version, "files": files, "video_hash": converted_sha256,
            "video_stem": PurePosixPath(source["original_name"]).stem, "video_path": source["member"],
            "copied": copied}


def manifest_text(folder, names):
    return "".join(f"{sha256_file(Path(folder) / name)}  {name}\n" for name in sorted(names))


def _same_content(existing, staging):
    names = sorted(p.name for p in staging.iterdir())
    if sorted(p.name for p in existing.iterdir()) != names:
        return False
    return all((existing / n).read_bytes() == (staging / n).read_bytes() for n in names)


def write_archive(root, sha256: str, files: dict, metadata: dict, now=None, check=None) -> bool:
    """Create or update ``root/<sha256>/`` atomically; return True if anything was written.

    ``files`` maps archive names to source paths. ``created_at`` is kept from an existing
    archive whose provenance is otherwise unchanged, so reruns are byte-identical. ``check`` is called with the
    complete metadata (``created_at`` included) before anything is written.
    """
    root, dest = Path(root), Path(root) / sha256
    # Two videos with the same content share one archive folder and may be finalised at the same time
    with exclusive_lock(root / ".lock") as locked:
        if locked:  # no other writer now: a killed run's staging / retired folders of this archive are stale
            remove_stale_temporaries(dest)
            remove_stale_temporaries(root / f"{sha256}.old")
        return _write_archive(root, dest, sha256, files, metadata, now, check)


def _write_archive(root, dest, sha256, files, metadata, now, check):
    created = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
    if (dest / "metadata.json").exists():
        old = read_json(dest / "metadata.json")
        if {k: v for k, v in old.items() if k != "created_at"} == metadata:
            created = old.get("created_at", created)
    metadata = {**metadata, "created_at": created}
    if check:
        check(metadata)
    staging = Path(tempfile.mkdtemp(prefix=f".{sha256}.", dir=root))
    try:
        for name, src in sorted(files.items()):
            shutil.copyfile(src, staging / name)
        (staging / "metadata.json").write_text(dumps_json(metadata), encoding="utf-8")
        names = [p.name for p in staging.iterdir()]
        (staging / "MANIFEST.sha256").write_text(manifest_text(staging, names), encoding="utf-8")
        if dest.is_dir() and _same_content(dest, staging):
            shutil.rmtree(staging)
            log.info("archive %s is up to date; nothing written", dest)
            return False
        if dest.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{sha256}.old.", dir=root))
            os.replace(dest, retired / sha256)
            os.replace(staging, dest)
            shutil.rmtree(retired)
        else:
            os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("archived %d files in %s", len(files) + 2, dest)
    return True


def validate_data(data, schema, path):
    """:func:`validate_file` for data about to be written to ``path``."""
    error = jsonschema.exceptions.best_match(Validator(schema).iter_errors(data))
    if error is not None:
        raise schema_error(path, schema, error)


def check_diarization(path):
    """UserError when two segments of one speaker in diarization.json overlap (what JSON Schema cannot say; segments
    of different speakers may overlap)."""
    found = own_overlap(read_json(path)["segments"])
    if found:
        speaker, a, b = found
        raise UserError(path, f"segments of {speaker} overlap ({a['start']}-{a['end']} s and "
                              f"{b['start']}-{b['end']} s): one speaker's segments must be merged")


def finalize_video(*, video, project, source_path, converted, json_inputs, schema_dir, extra_files, config,
                   environments, snakemake_version, archive_root, receipt):
    """Validate ``json_inputs`` ({name: (path, schema file name, archive name or None)}), then archive.

    ``source_path`` is the video's record (``source.json``): where it came from, nothing of the other videos.
    """
    outputs = {}
    for step, (path, schema_name, _) in json_inputs.items():
        outputs[step] = validate_file(path, load_schema(Path(schema_dir) / schema_name))
    if "diarization" in json_inputs:
        check_diarization(json_inputs["diarization"][0])
    record = read_json(source_path)
    if record["video"] != video:
        raise UserError(source_path, f"is the record of video {record['video']!r}, not {video!r}")
    origin = record["source"]
    entry = {**record, "archive": origin.get("name") or origin.get("url")}
    sha = sha256_file(converted)
    files = dict(extra_files)
    files.update({name: path for _, (path, _, name) in json_inputs.items() if name})
    metadata = build_metadata(video=video, project=project, source=entry, converted_sha256=sha, config=config,
                              steps=step_provenance(outputs), environments=environments,
                              snakemake_version=snakemake_version, files=sorted(files))
    schema = load_schema(Path(schema_dir) / "metadata.schema.json")
    write_archive(archive_root, sha, files, metadata,
                  check=lambda data: validate_data(data, schema, Path(archive_root) / sha / "metadata.json"))
    write_json(receipt, {"sha256": sha, "archive": str(Path(archive_root) / sha),
                         "files": sorted([*files, "metadata.json", "MANIFEST.sha256"])})
    return sha


def archive_plan(inputs: dict, video: str) -> tuple[dict, dict]:
    """What :func:`finalize_video` validates and archives of the job's named ``inputs``: ``(json_inputs,
    extra_files)``, by VALIDATED_INPUTS and ARCHIVED_INPUTS (an optional step's output is there when it ran)."""
    archived = {name: f"{video}{suffix}" for name, suffix in ARCHIVED_INPUTS.items() if name in inputs}
    json_inputs = {schema: (inputs[name], f"{schema}.schema.json", archived.get(name))
                   for name, schema in VALIDATED_INPUTS.items() if name in inputs}
    extra_files = {archived[name]: inputs[name] for name in archived if name not in VALIDATED_INPUTS}
    return json_inputs, extra_files


def finalize_outputs(video: str, project: str, inputs: dict, receipt: str, settings: FinalizeSettings) -> str:
    """Validate and archive one video's outputs, the finalize job's named ``inputs`` (``source``: its record,
    ``video``: the converted video, whose SHA-256 names the archive); returns that SHA-256."""
    json_inputs, extra_files = archive_plan(inputs, video)
    return finalize_video(video=video, project=project, source_path=inputs["source"], converted=inputs["video"],
                          json_inputs=json_inputs, schema_dir=settings.schemas, extra_files=extra_files,
                          config=settings.config, environments=settings.environments,
                          snakemake_version=settings.snakemake_version, archive_root=settings.archive_dir,
                          receipt=receipt)


def run(job):
    settings = settings_from(FinalizeSettings, job.settings)
    finalize_outputs(job.wildcards["video"], job.wildcards["project"], job.input, job.output["receipt"], settings)
