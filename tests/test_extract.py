"""Step 1: safe extraction, one hand-built malicious archive per threat."""

import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, VENV_DIR, require_binaries, schema_defaults
from steps.extract import Limits, collect_loose, extract_archive, safe_member_path, skip_reason
from vidflow.errors import UserError
from vidflow.job import job_command

EXTS = [".mp4", ".mov", ".mkv"]
LIMITS = Limits(max_total_bytes=10**9, max_members=1000, max_ratio=100)
RAR_DIR = ROOT / "tests" / "data" / "rar"


def extract(archive, tmp_path, limits=LIMITS):
    return extract_archive(archive, tmp_path / "out" / "extracted", "proj", limits, EXTS)


def assert_refused(archive, tmp_path, *fragments, limits=LIMITS):
    """Extraction fails with a one-line error naming the archive, and leaves nothing behind."""
    with pytest.raises(UserError) as err:
        extract(archive, tmp_path, limits)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(archive))
    for fragment in fragments:
        assert fragment in message
    out_parent = tmp_path / "out"
    assert not out_parent.exists() or list(out_parent.iterdir()) == []
    return message


def files_outside(tmp_path, *allowed):
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if not any(p.is_relative_to(tmp_path / a) for a in allowed))


def zip_with(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def tar_with(path, infos):
    with tarfile.open(path, "w:gz") as tf:
        for info, data in infos:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def tar_info(name, kind=tarfile.REGTYPE, size=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info


# --- pure checks ---

@pytest.mark.parametrize("name, reason", [
    ("../evil.mp4", "traversal"), ("a/../../evil.mp4", "traversal"), ("/etc/evil.mp4", "absolute"),
    ("C:/evil.mp4", "drive"), ("C:\\evil.mp4", "drive"), ("\\\\server\\share\\x.mp4", "absolute"),
    ("..\\evil.mp4", "traversal"), ("bad\x00.mp4", "NUL"),
])
def test_unsafe_member_paths_are_refused(name, reason):
    with pytest.raises(ValueError, match=reason):
        safe_member_path(name)


def test_safe_member_paths_are_normalised():
    assert safe_member_path("./a//b/./c.mp4") == "a/b/c.mp4"
    assert safe_member_path("dir\\clip.mp4") == "dir/clip.mp4"


def test_skip_reasons():
    exts = {".mp4"}
    assert skip_reason("a/clip.MP4", exts) is None
    assert skip_reason("__MACOSX/a/._clip.mp4", exts) == "macOS metadata"
    assert skip_reason("inner.tar.gz", exts) == "nested archive (not extracted)"
    assert skip_reason("notes.txt", exts) == "not a video (extension)"


# --- real archives ---

def test_zip_videos_extracted_with_unique_slugs_and_manifest(tmp_path, tiny_video):
    data = tiny_video.read_bytes()
    archive = zip_with(tmp_path / "talks.zip", [
        ("a b.mp4", data), ("a_b.mp4", data), ("sub/A B.mp4", data), ("notes/readme.txt", b"hello"),
        ("fake.mp4", b"this is text, not a video"), ("__MACOSX/._a b.mp4", b"\x00\x05"),
    ])
    manifest = extract(archive, tmp_path)
    out = tmp_path / "out" / "extracted"
    assert [v["video"] for v in manifest["videos"]] == ["a_b", "a_b_2", "A_B_3"]
    assert [v["member"] for v in manifest["videos"]] == ["a b.mp4", "a_b.mp4", "sub/A B.mp4"]
    for entry in manifest["videos"]:
        assert Path(entry["path"]).read_bytes() == data
        assert entry["bytes"] == len(data) and entry["duration"] == pytest.approx(1.0, abs=0.1)
    reasons = {s["member"]: s["reason"] for s in manifest["skipped"]}
    assert reasons["notes/readme.txt"] == "not a video (extension)"
    assert reasons["__MACOSX/._a b.mp4"] == "macOS metadata"
    assert reasons["fake.mp4"].startswith("not a readable media file")
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["A_B_3.mp4", "a_b.mp4", "a_b_2.mp4"]
    assert files_outside(tmp_path, "out", "talks.zip") == []


def test_extraction_is_deterministic(tmp_path, tiny_video):
    archive = zip_with(tmp_path / "x.zip", [("clip.mp4", tiny_video.read_bytes())])
    first = extract_archive(archive, tmp_path / "one" / "extracted", "p", LIMITS, EXTS)
    second = extract_archive(archive, tmp_path / "two" / "extracted", "p", LIMITS, EXTS)
    strip = lambda m: [{k: v for k, v in e.items() if k != "path"} for e in m["videos"]]  # noqa: E731
    assert strip(first) == strip(second)


@pytest.mark.parametrize("suffix, mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tar.bz2", "w:bz2"),
                                          (".tar.xz", "w:xz"), (".tgz", "w:gz")])
def test_tar_flavours(tmp_path, tiny_video, suffix, mode):
    archive = tmp_path / f"talks{suffix}"
    with tarfile.open(archive, mode) as tf:
        tf.add(tiny_video, arcname="dir/clip one.mp4")
    manifest = extract(archive, tmp_path)
    assert [v["video"] for v in manifest["videos"]] == ["clip_one"]


def test_7z_archive(tmp_path, tiny_video):
    py7zr = pytest.importorskip("py7zr")
    archive = tmp_path / "talks.7z"
    with py7zr.SevenZipFile(archive, "w") as sz:
        sz.write(tiny_video, "clip.mp4")
    assert [v["video"] for v in extract(archive, tmp_path)["videos"]] == ["clip"]


def test_rar_archive_is_read(tmp_path):
    """RAR5 from rarfile's test suite (ISC licence, tests/data/rar/LICENSE.rarfile): members listed."""
    manifest = extract(RAR_DIR / "rar5-subdirs.rar", tmp_path)
    assert manifest["videos"] == []
    assert {s["member"] for s in manifest["skipped"]} >= {"sub/dir1/file1.txt", "sub/with space/long fn.txt"}


@pytest.mark.parametrize("member, fragment", [
    ("../evil.mp4", "path traversal"), ("/tmp/evil.mp4", "absolute path"), ("C:/evil.mp4", "drive letter"),
    ("a/../../evil.mp4", "path traversal"),
])
def test_zip_path_attacks_refused(tmp_path, tiny_video, member, fragment):
    archive = zip_with(tmp_path / "evil.zip", [("ok.mp4", tiny_video.read_bytes()), (member, b"x")])
    assert_refused(archive, tmp_path, "unsafe member path", fragment)
    assert files_outside(tmp_path, "evil.zip", "out") == []
    assert not Path("/tmp/evil.mp4").exists()


@pytest.mark.parametrize("info, fragment", [
    (tar_info("link.mp4", tarfile.SYMTYPE, linkname="/etc/passwd"), "is a link"),
    (tar_info("hard.mp4", tarfile.LNKTYPE, linkname="ok.mp4"), "is a link"),
    (tar_info("dev.mp4", tarfile.CHRTYPE), "special file"),
    (tar_info("fifo.mp4", tarfile.FIFOTYPE), "special file"),
    (tar_info("../../evil.mp4", size=1), "path traversal"),
])
def test_tar_links_devices_and_traversal_refused(tmp_path, tiny_video, info, fragment):
    data = tiny_video.read_bytes()
    members = [(tar_info("ok.mp4", size=len(data)), data), (info, b"x" if info.size else None)]
    archive = tar_with(tmp_path / "evil.tar.gz", members)
    assert_refused(archive, tmp_path, fragment)
    assert files_outside(tmp_path, "evil.tar.gz", "out") == []


def test_rar_symlink_and_hardlink_refused(tmp_path):
    assert_refused(RAR_DIR / "rar3-symlink-unix.rar", tmp_path, "is a link")
    assert_refused(RAR_DIR / "rar5-hlink.rar", tmp_path, "is a link")


def test_decompression_bomb_refused_by_ratio(tmp_path):
    archive = zip_with(tmp_path / "bomb.zip", [("bomb.mp4", b"\0" * (32 << 20))])
    assert archive.stat().st_size < 100_000
    assert_refused(archive, tmp_path, "max_ratio", "decompression bomb")


def test_total_bytes_and_member_limits(tmp_path, tiny_video):
    data = tiny_video.read_bytes()
    archive = zip_with(tmp_path / "big.zip", [(f"c{i}.mp4", data) for i in range(3)])
    assert_refused(archive, tmp_path, "max_total_bytes=", limits=Limits(len(data) * 2, 1000, 100))
    many = zip_with(tmp_path / "many.zip", [(f"n{i}.txt", b"x") for i in range(20)])
    assert_refused(many, tmp_path, "max_members=10", limits=Limits(10**9, 10, 100))


def test_encrypted_archives_refused(tmp_path, tiny_video):
    require_binaries("zip")
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(tiny_video, src / "clip.mp4")
    subprocess.run(["zip", "-q", "-P", "secret", str(tmp_path / "enc.zip"), "clip.mp4"], cwd=src, check=True)
    assert_refused(tmp_path / "enc.zip", tmp_path, "encrypted")
    assert_refused(RAR_DIR / "rar5-hpsw.rar", tmp_path, "encrypted")
    py7zr = pytest.importorskip("py7zr")
    with py7zr.SevenZipFile(tmp_path / "enc.7z", "w", password="secret") as sz:
        sz.set_encrypted_header(True)
        sz.write(tiny_video, "clip.mp4")
    assert_refused(tmp_path / "enc.7z", tmp_path, "encrypted")


@pytest.mark.parametrize("name", ["cut.zip", "cut.tar.gz"])
def test_truncated_archives_refused(tmp_path, tiny_video, name):
    archive = tmp_path / name
    if name.endswith(".zip"):
        zip_with(archive, [("a.mp4", tiny_video.read_bytes()), ("b.mp4", tiny_video.read_bytes())])
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(tiny_video, "a.mp4")
            tf.add(tiny_video, "b.mp4")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    assert_refused(archive, tmp_path, "corrupt or truncated archive")


def test_not_an_archive_refused(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_text("just text\n" * 100)
    assert_refused(fake, tmp_path, "corrupt or truncated archive")


def test_inputs_are_never_modified(tmp_path, tiny_video):
    archive = zip_with(tmp_path / "x.zip", [("clip.mp4", tiny_video.read_bytes())])
    before = (archive.read_bytes(), os.stat(archive).st_mtime_ns)
    extract(archive, tmp_path)
    assert (archive.read_bytes(), os.stat(archive).st_mtime_ns) == before


def test_loose_videos_registered_in_place(tmp_path, tiny_video):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(tiny_video, folder / "My Talk.mp4")
    (folder / "broken.mp4").write_bytes(b"")
    manifest = collect_loose([folder / "My Talk.mp4", folder / "broken.mp4"], tmp_path / "extracted", "_loose")
    assert [(v["video"], v["path"]) for v in manifest["videos"]] == [("My_Talk", str(folder / "My Talk.mp4"))]
    assert manifest["skipped"][0]["member"] == "broken.mp4"
    assert sorted(p.name for p in folder.iterdir()) == ["My Talk.mp4", "broken.mp4"]


def test_legacy_non_utf8_member_names_are_decoded(tmp_path, tiny_video):
    archive = tmp_path / "legacy.zip"
    zip_with(archive, [("Gr\u00fc\u00dfe.mp4", tiny_video.read_bytes())])
    data = archive.read_bytes()
    utf8 = "Gr\u00fc\u00dfe.mp4".encode("utf-8")
    legacy = "Gr\u00fc\u00dfe.mp4".encode("cp437")
    # clear the UTF-8 flag (bit 11) in both headers and store the CP437 name (padded to the same length, so offsets
    # stay valid)
    assert len(legacy) < len(utf8)
    legacy = legacy.replace(b".mp4", b"_" * (len(utf8) - len(legacy)) + b".mp4")
    data = data.replace(utf8, legacy)
    for header, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.index(header)
        flags = int.from_bytes(data[pos + flag_offset:pos + flag_offset + 2], "little") & ~0x0800
        data = data[:pos + flag_offset] + flags.to_bytes(2, "little") + data[pos + flag_offset + 2:]
    archive.write_bytes(data)
    manifest = extract(archive, tmp_path)
    assert [(v["member"], v["video"]) for v in manifest["videos"]] == [("Gr\u00fc\u00dfe__.mp4", "Grue")]


def test_the_rule_s_job_extracts_its_archive_or_registers_its_loose_videos(tmp_path, tiny_video):
    """The extract step on the job rules/extract.smk writes: the project's source is the job's named input."""
    archive = zip_with(tmp_path / "talks.zip", [("a b.mp4", tiny_video.read_bytes()), ("notes.txt", b"x")])
    sources = {"talks": {"archive": archive}, "_loose": {"loose": [tiny_video]}}
    manifests = {}
    for project, source in sources.items():
        out = tmp_path / project / "extracted"
        command = job_command(VENV_DIR / "extract" / "bin" / "python", "extract", source,
                              {"extracted": out}, schema_defaults("extract"), {"project": project},
                              log=tmp_path / f"{project}.log")
        subprocess.run(command, check=True)
        manifests[project] = json.loads((out / "manifest.json").read_text())
    talks, loose = manifests["talks"], manifests["_loose"]
    assert (talks["project"], talks["source"]) == ("talks", {"kind": "archive", "name": "talks.zip"})
    assert [(v["video"], v["member"]) for v in talks["videos"]] == [("a_b", "a b.mp4")]
    assert talks["skipped"] == [{"member": "notes.txt", "reason": "not a video (extension)"}]
    assert Path(talks["videos"][0]["path"]).read_bytes() == tiny_video.read_bytes()
    assert (loose["project"], loose["source"]) == ("_loose", {"kind": "loose"})
    assert [(v["video"], v["path"]) for v in loose["videos"]] == [("tiny", str(tiny_video))]
    assert "talks.zip: 1 video(s), 1 other member(s) skipped" in (tmp_path / "talks.log").read_text()
