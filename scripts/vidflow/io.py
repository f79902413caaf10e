"""Atomic, deterministic file writing."""

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import interrupt
from .errors import UserError

log = logging.getLogger("vidflow")
TEMP_RANDOM = r"[a-z0-9_]{8}"  # the random part of a name from tempfile.mkstemp / mkdtemp


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the final suffix (tools such as ffmpeg pick the
    format from it) and is removed if the block raises. Temporaries of ``path`` that a
    killed run left behind (SIGKILL skips every clean-up) are removed first.
    """
    path = Path(path)
    suffix = suffix or path.suffix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path, suffix)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as err:
        raise write_error(path, err) from None
    os.close(fd)
    try:
        yield Path(tmp)
        interrupt.check()  # a step asked to stop publishes nothing, even where a library swallowed the Ctrl-C
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            raise write_error(path, err) from None
        raise


def stale_temporaries(path, suffix=""):
    """Temporary files and folders of ``path`` in its folder: ``.{name}.XXXXXXXX{suffix}`` as ``atomic_path``
    (and a ``mkdtemp(prefix=f".{name}.", suffix=suffix)`` staging folder) names them, sorted."""
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + TEMP_RANDOM + re.escape(suffix))
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return sorted(path.parent / name for name in names if pattern.fullmatch(name))


def remove_stale_temporaries(path, suffix=""):
    """Remove the temporaries of ``path`` (:func:`stale_temporaries`) that a killed writer left behind.

    Only for a path that no other process is writing now: Snakemake runs one job per output. Returns them.
    """
    stale = stale_temporaries(path, suffix)
    for old in stale:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted run", old)
    return stale


# flock is missing on some cluster file systems (Lustre mounted without -o flock gives ENOSYS)
NO_LOCKS_ERRNOS = {errno.ENOSYS, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP}


@contextmanager
def exclusive_lock(path):
    """Hold an exclusive ``flock`` on the file ``path`` (created if missing) for the block; yields True.

    Where the file system has no locks, logs that and yields False: the caller goes on unlocked and skips
    whatever is only safe under the lock. The lock file stays (removing it would race with a waiting locker).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            locked = True
        except OSError as err:
            if err.errno not in NO_LOCKS_ERRNOS:
                raise
            log.warning("%s: the file system does not support locks (%s); going on without one", path,
                        err.strerror or err)
            locked = False
        yield locked  # outside the except clause: an error of the block is not chained to the OSError


# A full disk or quota, a file-size limit, a read-only or unwritable folder: the user's to fix.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


def write_error(path, err):
    """UserError for an OSError of ``WRITE_ERRNOS`` while writing ``path``."""
    return UserError(path, f"cannot write ({err.strerror or err}); free disk space or fix the output folder")


def dumps_json(data, compact=False):
    """Serialise with sorted keys and a trailing newline, so equal data gives equal bytes."""
    if compact:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, data, compact=False):
    """Write ``data`` as JSON atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(data, compact), encoding="utf-8")


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_json_input(path, what, keys=()):
    """A step's JSON input, checked for the members the step reads: a UserError naming the file otherwise."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as err:
        raise UserError(path, f"cannot read: {err}") from None
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise UserError(path, f"not a {what}: no {', '.join(missing)}")
    return data


def sha256_file(path, chunk=1 << 20):
    """SHA-256 hex digest of a file, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
