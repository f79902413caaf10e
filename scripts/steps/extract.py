"""Step 1: safe extraction of videos from archives (ZIP, TAR.*, RAR, 7z) via libarchive.

Only regular files with a video extension are ever written, always by this code
under a fresh staging folder: links, devices and unsafe paths are refused, never
created or followed. Limits on members, bytes and compression ratio stop bombs
while streaming. Every candidate is confirmed with ffprobe.
"""

import ctypes
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vidflow.errors import UserError
from vidflow.io import WRITE_ERRNOS, read_json, sha256_file, write_error, write_json
from vidflow.job import settings_from
from vidflow.media import ffprobe, summarize
from vidflow.naming import archive_stem, unique_slugs, video_stem
from vidflow.status import QUIET_SKIPS  # not warned about member by member, nor listed as items

log = logging.getLogger("extract")

ARCHIVE_KINDS = {".zip": "zip", ".rar": "rar", ".7z": "7z", ".tar": "tar", ".tgz": "tar", ".tbz2": "tar",
                 ".txz": "tar", ".gz": "tar", ".bz2": "tar", ".xz": "tar"}
_DRIVE = re.compile(r"^[A-Za-z]:")
CHUNK = 1 << 20
# Below this many extracted bytes the ratio check is not applied (tiny archives have noisy ratios).
RATIO_FLOOR_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Decompression-bomb limits (from config ``extract``)."""

    max_total_bytes: int
    max_members: int
    max_ratio: float


@dataclass(frozen=True)
class ExtractSettings(Limits):
    """The ``extract`` config section (keys and defaults: config/schema.yaml): limits and what counts as a video."""

    video_extensions: list[str]


def _libarchive():
    """Import libarchive-c, pointing it at a conda env's libarchive when there is one."""
    prefix = os.environ.get("CONDA_PREFIX")
    if prefix and "LIBARCHIVE" not in os.environ:
        candidate = Path(prefix) / "lib" / "libarchive.so"
        if candidate.exists():
            os.environ["LIBARCHIVE"] = str(candidate)
    import libarchive  # noqa: PLC0415 - after LIBARCHIVE is set

    return libarchive


def safe_member_path(name: str) -> str:
    """Normalised relative POSIX path of an archive member, or raise ValueError(reason).

    Refuses absolute paths, drive letters, UNC paths, ``..`` components and NUL bytes.
    """
    if "\x00" in name:
        raise ValueError("NUL byte in member name")
    unified = name.replace("\\", "/")
    if unified.startswith("/"):
        raise ValueError("absolute path")
    if _DRIVE.match(unified):
        raise ValueError("drive letter in path")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("path traversal ('..')")
    if not parts:
        raise ValueError("empty member name")
    return "/".join(parts)


def skip_reason(member: str, extensions) -> str | None:
    """Why a regular member is not a video candidate (None if it is one)."""
    path = PurePosixPath(member)
    if any(part == "__MACOSX" for part in path.parts) or path.name.startswith("._"):
        return "macOS metadata"
    suffix = path.suffix.lower()
    if suffix in ARCHIVE_KINDS or member.lower().endswith((".tar.gz", ".tar.bz2", ".tar.xz")):
        return "nested archive (not extracted)"
    if suffix not in extensions:
        return "not a video (extension)"
    return None


def _is_encrypted(libarchive, entry):
    func = libarchive.ffi.libarchive.archive_entry_is_encrypted
    func.argtypes, func.restype = [ctypes.c_void_p], ctypes.c_int
    return func(entry._entry_p) > 0  # noqa: SLF001 - libarchive-c exposes no accessor


def _describe_archive_error(err):
    text = str(err)
    if "ncrypt" in text or "assphrase" in text:
        return "encrypted archive (password-protected archives are not supported)"
    return f"corrupt or truncated archive ({text.splitlines()[0] if text else type(err).__name__})"


def _copy_member(entry, reader, dest, totals, limits, archive):
    """Stream one member to ``dest``, enforcing the limits; return its SHA-256."""
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        for block in entry.get_blocks(CHUNK):
            out.write(block)
            digest.update(block)
            totals["bytes"] += len(block)
            if totals["bytes"] > limits.max_total_bytes:
                raise UserError(archive, f"extracted size exceeds extract.max_total_bytes={limits.max_total_bytes}")
            consumed = max(reader.bytes_read, 1)
            if totals["bytes"] > RATIO_FLOOR_BYTES and totals["bytes"] / consumed > limits.max_ratio:
                raise UserError(archive, f"compression ratio above extract.max_ratio={limits.max_ratio:g} "
                                         f"(possible decompression bomb)")
    return digest.hexdigest()


def _stream_candidates(archive, staging, limits, extensions):
    """Write every video candidate of ``archive`` into ``staging``; return (candidates, skipped)."""
    libarchive = _libarchive()
    candidates, skipped, seen = [], [], 0
    totals = {"bytes": 0}
    try:
        with libarchive.file_reader(str(archive)) as reader:
            for entry in reader:
                seen += 1
                if seen > limits.max_members:
                    raise UserError(archive, f"more than extract.max_members={limits.max_members} members")
                raw_name = entry.pathname or ""
                if isinstance(raw_name, bytes):  # not UTF-8: legacy ZIP names are CP437, which maps every byte
                    raw_name = raw_name.decode("cp437")
                try:
                    member = safe_member_path(raw_name)
                except ValueError as err:
                    raise UserError(archive, f"unsafe member path {raw_name!r}: {err}") from None
                if entry.isdir:
                    continue
                if entry.issym or entry.islnk:
                    raise UserError(archive, f"member {member!r} is a link; links are refused")
                if not entry.isreg:
                    raise UserError(archive, f"member {member!r} is a special file (device, fifo or socket)")
                if _is_encrypted(libarchive, entry):
                    raise UserError(archive, f"member {member!r} is encrypted (password-protected archives "
                                             f"are not supported)")
                reason = skip_reason(member, extensions)
                if reason:
                    if reason.startswith("nested archive"):  # likely holds videos the user expects
                        log.warning("%s: skipping %s: %s", archive.name, member, reason)
                    skipped.append({"member": member, "reason": reason})
                    continue
                dest = staging / f"{len(candidates):06d}{PurePosixPath(member).suffix.lower()}"
                sha = _copy_member(entry, reader, dest, totals, limits, archive)
                candidates.append({"member": member, "file": dest, "sha256": sha})
    except libarchive.ArchiveError as err:
        raise UserError(archive, _describe_archive_error(err)) from None
    return candidates, skipped


def _confirm_videos(candidates, skipped, source):
    """Keep candidates in which ffprobe finds a video stream; record the others as skipped."""
    videos = []
    for cand in candidates:
        try:
            summary = summarize(ffprobe(cand["file"]))
        except UserError as err:
            summary, why = None, err.reason
        else:
            why = None if summary["video"] else "no video stream"
        if why:
            log.warning("%s: skipping %s: %s", source, cand["member"], why)
            skipped.append({"member": cand["member"], "reason": why})
            if cand.get("staged", True):
                Path(cand["file"]).unlink(missing_ok=True)
            continue
        cand["duration"] = summary["duration"]
        videos.append(cand)
    return videos


def _name_videos(videos):
    """Give each confirmed video its unique slug (``video`` key), in member order."""
    for v, slug in zip(videos, unique_slugs([video_stem(v["member"]) for v in videos])):
        v["video"] = slug


def _manifest(project, source, videos, skipped):
    keys = ("video", "path", "member", "sha256", "bytes")
    entries = [{**{k: v[k] for k in keys}, "original_name": PurePosixPath(v["member"]).name,
                "duration": round(v["duration"], 3)} for v in videos]
    return {"project": project, "source": source, "videos": entries,
            "skipped": sorted(skipped, key=lambda s: s["member"])}


def extract_archive(archive, out_dir, project: str, limits: Limits, extensions) -> dict:
    """Extract the videos of ``archive`` into ``out_dir`` (created atomically); return the manifest.

    ``out_dir`` gets ``videos/<slug><ext>`` and ``manifest.json``. Any unsafe member,
    limit breach, encryption or corruption raises UserError and leaves nothing behind.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    extensions = {e.lower() for e in extensions}
    staging = _staging_dir(out_dir)
    try:
        (staging / "videos").mkdir()
        candidates, skipped = _stream_candidates(archive, staging, limits, extensions)
        videos = _confirm_videos(sorted(candidates, key=lambda c: c["member"]), skipped, archive.name)
        _name_videos(videos)
        for v in videos:
            final = Path("videos") / f"{v['video']}{v['file'].suffix}"
            os.replace(v["file"], staging / final)
            v["path"], v["bytes"] = str(out_dir / final), (staging / final).stat().st_size
        manifest = _manifest(project, {"kind": "archive", "name": archive.name}, videos, skipped)
        write_json(staging / "manifest.json", manifest)
        _publish_dir(staging, out_dir)
    except BaseException as err:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:  # disk full while extracting
            raise write_error(out_dir, err) from None
        raise
    log.info("%s: %d video(s), %d other member(s) skipped", archive.name, len(manifest["videos"]),
             len(manifest["skipped"]))
    if not manifest["videos"] and all(s["reason"] in QUIET_SKIPS for s in manifest["skipped"]):
        log.warning("%s: no video found (%s)", archive.name, _skip_counts(manifest["skipped"]))
    return manifest


def _skip_counts(skipped):
    """``3 member(s) skipped: 2 not a video (extension), 1 macOS metadata`` (most frequent reasons first)."""
    counts = Counter(s["reason"] for s in skipped)
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{len(skipped)} member(s) skipped" + (f": {reasons}" if reasons else "")


def _staging_dir(out_dir):
    """A new hidden folder beside ``out_dir`` to build it in (UserError naming ``out_dir`` if it cannot be made)."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as err:
        raise write_error(out_dir, err) from None


def _publish_dir(staging, out_dir):
    """Rename the finished staging folder to ``out_dir``, with the usual permissions (mkdtemp makes 0700)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)
    os.replace(staging, out_dir)


def _publish_manifest(out_dir, manifest):
    """Create ``out_dir`` holding only ``manifest.json``, atomically (a killed job leaves no half folder)."""
    staging = _staging_dir(out_dir)
    try:
        write_json(staging / "manifest.json", manifest)
        _publish_dir(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def collect_loose(files, out_dir, project: str) -> dict:
    """Register loose videos (no copy): ``out_dir/manifest.json`` points at the originals."""
    out_dir = Path(out_dir)
    candidates = [{"member": Path(f).name, "file": Path(f), "path": str(f), "staged": False}
                  for f in sorted(files, key=lambda f: Path(f).name)]
    skipped = []
    videos = _confirm_videos(candidates, skipped, "input folder")
    _name_videos(videos)
    for v in videos:
        v["sha256"], v["bytes"] = sha256_file(v["file"]), v["file"].stat().st_size
    manifest = _manifest(project, {"kind": "loose"}, videos, skipped)
    _publish_manifest(out_dir, manifest)
    log.info("loose videos: %d registered, %d skipped", len(manifest["videos"]), len(manifest["skipped"]))
    return manifest


def extract_download(status_path, out_dir, project: str, limits: Limits, extensions, earlier=()) -> dict:
    """Extract (or register) what a ``download`` job fetched, as described by its ``status.json``.

    ``earlier`` are the ``status.json`` of the links listed before this one in ``sources``: if one of
    them delivered the same content, this project is empty (its manifest says which link has it), so
    the same videos are processed once, always by the first link, whichever download finished first.
    """
    status = read_json(status_path)
    first = next((s for s in map(read_json, earlier) if s["sha256"] == status["sha256"]), None)
    if first is not None:
        note = f"same content as {first['url']}"
        manifest = _manifest(project, {"kind": "download", "url": status["url"], "note": note}, [], [])
        _publish_manifest(Path(out_dir), manifest)
        log.info("%s: %s; nothing to extract", status["url"], note)
        return manifest
    path = Path(status["file"])
    if archive_stem(path.name):
        return extract_archive(path, out_dir, project, limits, extensions)
    return collect_loose([path], out_dir, project)


def extract_project(source: dict, out_dir: str, project: str, settings: ExtractSettings) -> dict:
    """Extract (or register) the videos of one project into ``out_dir``; return its manifest.

    ``source`` is the extraction job's named inputs: ``archive`` (an archive of the input folder), ``loose`` (the
    input folder's loose videos) or ``download`` (a download job's ``status.json``, with ``earlier``: those of the
    links listed before it in ``sources``).
    """
    extensions = settings.video_extensions
    if "archive" in source:
        return extract_archive(source["archive"], out_dir, project, settings, extensions)
    if "download" in source:
        return extract_download(source["download"], out_dir, project, settings, extensions, source.get("earlier", []))
    return collect_loose(source["loose"], out_dir, project)


def run(job):
    settings = settings_from(ExtractSettings, job.settings)
    extract_project(job.input, job.output["extracted"], job.wildcards["project"], settings)

