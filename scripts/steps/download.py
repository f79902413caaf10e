"""Inputs from URLs: normalise links, stream each to a temp file, verify, keep a shared history.

The history (``download_history.json`` beside the downloads) is read and written under a
file lock, so neither a rerun nor a parallel run downloads a URL twice, and a file whose
content is already stored (same SHA-256) is kept once. FromSmash and SwissTransfer links
need a browser: they are reported as "manual download required" and skipped.
"""

import csv
import email.message
import hashlib
import http.client
import json
import logging
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vidflow.errors import UserError
from vidflow.io import exclusive_lock, read_json, remove_stale_temporaries, write_json
from vidflow.job import settings_from
from vidflow.naming import slugify
from vidflow.summary import DOWNLOAD_COLUMNS, download_rows, tsv_text, write_table

log = logging.getLogger("download")
MANUAL_HOSTS = ("fromsmash.com", "swisstransfer.com")
CHUNK = 1 << 20
HISTORY = "download_history.json"


@dataclass(frozen=True)
class DownloadSettings:
    """The ``download`` config section (keys and defaults: config/schema.yaml)."""

    dir: str  # the downloads and their shared history (download_history.json)
    timeout: float  # seconds without data before an attempt fails
    retries: int  # extra attempts after a failed one


@dataclass(frozen=True)
class DownloadsTableSettings:
    """What the table of every link lists (rules/download.smk): the links' download jobs and the skipped links."""

    links: dict[str, str]  # link id -> URL, one download job each (``<download_dir>/<id>/status.json``)
    manual: list[str]  # URLs that need a browser (skipped)
    download_dir: str
    logs_dir: str  # the jobs' logs (``<logs_dir>/download/<id>.log``): why a link failed


def normalise_url(url: str) -> str:
    """Dropbox share links become direct downloads (``dl=1``); other URLs are returned unchanged."""
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.hostname or ""
    if host == "dropbox.com" or host.endswith(".dropbox.com"):
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "dl"]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query + [("dl", "1")])))
    return url.strip()


def manual_reason(url: str) -> str | None:
    """Why a link cannot be fetched automatically (None if it can)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    for manual in MANUAL_HOSTS:
        if host == manual or host.endswith("." + manual):
            return f"manual download required ({manual} needs a browser)"
    return None


def link_id(url: str) -> str:
    """Stable short id of a (normalised) URL, used as its download folder name."""
    return hashlib.sha256(normalise_url(url).encode()).hexdigest()[:12]


def url_filename(url: str, fallback: str = "download") -> str:
    """Safe file name from the URL path (the part after the last ``/``), extension kept."""
    name = urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(url).path).name)
    stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    if name.lower().endswith((".tar.gz", ".tar.bz2", ".tar.xz")):
        stem, ext = name[:-7], name[-6:]
    return f"{slugify(stem, fallback)}.{slugify(ext, '')}" if dot and ext else slugify(name, fallback)


def read_sources(path) -> list[dict]:
    """Links from a JSON list (``[{"url": ..., "sha256"?, "size"?, "timestamp"?}]``) or a TSV/CSV sheet.

    Returns de-duplicated entries (by normalised URL) in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "sources file not found (config key: sources)")
    try:
        if path.suffix.lower() == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
        else:
            delimiter = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
            rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines(), delimiter=delimiter))
    except (ValueError, csv.Error) as err:
        raise UserError(path, f"cannot parse sources ({err})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("url") for r in rows):
        raise UserError(path, "sources must be a list of records, each with a 'url'")
    links, seen = [], set()
    for row in rows:
        url = normalise_url(str(row["url"]))
        if url in seen:
            continue
        seen.add(url)
        entry = {"url": url}
        if row.get("sha256"):
            entry["sha256"] = str(row["sha256"]).lower()
        if row.get("size") not in (None, ""):
            entry["size"] = int(row["size"])
        links.append(entry)
    return links


@contextmanager
def locked_history(folder):
    """Yield the history list under an exclusive lock; it is written back atomically on exit."""
    folder = Path(folder)
    with exclusive_lock(folder / f".{HISTORY}.lock"):
        path = folder / HISTORY
        history = read_json(path) if path.exists() else []
        before = list(history)
        yield history
        if history != before:
            write_json(path, history)


def _filename(response, url):
    disposition = response.headers.get("Content-Disposition", "")
    if "filename" in disposition:
        message = email.message.Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
        if name:
            return url_filename("/" + urllib.parse.quote(name))
    return url_filename(response.geturl() or url)


def _fetch_once(url, folder, timeout):
    """One attempt: stream to a temp file in ``folder``. Returns (temp path, name, sha256, size)."""
    request = urllib.request.Request(url, headers={"User-Agent": "video-workflow-downloader/1"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        expected = response.headers.get("Content-Length")
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                while block := response.read(CHUNK):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
            if expected is not None and size != int(expected):
                raise http.client.IncompleteRead(b"", int(expected) - size)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp), _filename(response, url), digest.hexdigest(), size


def _retryable(err):
    if isinstance(err, urllib.error.HTTPError):
        return err.code in (408, 429) or err.code >= 500
    return isinstance(err, (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError,
                            TimeoutError))


def fetch(url, folder, timeout, retries, backoff=1.0):
    """Download ``url`` into a temp file in ``folder`` with retries; UserError with the last reason."""
    for attempt in range(1, retries + 2):
        try:
            return _fetch_once(url, folder, timeout)
        except Exception as err:  # noqa: BLE001 - classified below
            reason = f"HTTP {err.code}" if isinstance(err, urllib.error.HTTPError) else f"{type(err).__name__}: {err}"
            if not _retryable(err) or attempt > retries:
                raise UserError(url, f"download failed after {attempt} attempt(s) ({reason})") from None
            log.warning("%s: attempt %d failed (%s); retrying", url, attempt, reason)
            time.sleep(backoff * attempt)
    raise AssertionError("unreachable")


def download_link(link: dict, out_dir: str, settings: DownloadSettings, backoff: float = 1.0, now=time.time) -> dict:
    """Fetch one link (``url``, optional ``sha256`` and ``size`` to check) into ``out_dir`` (created atomically) and
    record it in the shared history (in ``settings.dir``).

    ``out_dir/status.json`` says what happened: ``downloaded`` (with ``file``) or
    ``duplicate`` (same URL or same content already stored: ``file`` points at it).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)  # a killed run's staging folder, with its .part- file
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))

    def publish(status):  # called under the history lock: a recorded file is always in place
        write_json(staging / "status.json", status)
        os.replace(staging, out_dir)
        return status

    try:
        return _download_into(link, staging, out_dir, settings, backoff, now, publish)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _stored(entry):
    return entry.get("file") and Path(entry["file"]).is_file()


def _download_into(link, staging, out_dir, settings, backoff, now, publish):
    url, history_dir = link["url"], settings.dir
    with locked_history(history_dir) as history:
        known = next((h for h in history if h["url"] == url and _stored(h)), None)
        if known:
            log.info("%s: already downloaded as %s; not downloading again", url, known["file"])
            return publish({"url": url, "status": "duplicate", "reason": "same URL", **_pick(known)})
    tmp, name, sha, size = fetch(url, staging, settings.timeout, settings.retries, backoff)
    if link.get("sha256") and link["sha256"] != sha:
        tmp.unlink()
        raise UserError(url, f"checksum mismatch (expected sha256 {link['sha256']}, got {sha})")
    if link.get("size") is not None and link["size"] != size:
        tmp.unlink()
        raise UserError(url, f"size mismatch (expected {link['size']} bytes, got {size})")
    with locked_history(history_dir) as history:
        same = next((h for h in history if h["sha256"] == sha and _stored(h)), None)
        if same:
            tmp.unlink()
            record = {"url": url, "timestamp": round(now(), 3), "sha256": sha, "size": size, "file": same["file"]}
            history.append(record)
            log.info("%s: same content as %s; stored once", url, same["url"])
            return publish({"url": url, "status": "duplicate", "reason": f"same content as {same['url']}",
                            **_pick(same)})
        final = out_dir / name
        os.replace(tmp, staging / name)
        history.append({"url": url, "timestamp": round(now(), 3), "sha256": sha, "size": size, "file": str(final)})
        log.info("%s: %d bytes, sha256 %s -> %s", url, size, sha, final)
        return publish({"url": url, "status": "downloaded", "file": str(final), "sha256": sha, "size": size})


def _pick(entry):
    return {"file": entry["file"], "sha256": entry["sha256"], "size": entry["size"]}


def write_downloads_table(path: str, settings: DownloadsTableSettings) -> None:
    """``downloads.tsv``: one row per link, downloaded, duplicate, failed (with the reason from its job's log),
    unfinished or skipped (the workflow's onerror handler writes the same rows from what finished)."""
    rows = download_rows(settings.links, settings.download_dir, settings.logs_dir, settings.manual)
    write_table(path, tsv_text(rows, DOWNLOAD_COLUMNS))


def run(job):
    download_link(job.settings["link"], job.output["folder"], settings_from(DownloadSettings, job.settings))


def run_table(job):
    write_downloads_table(job.output["table"], settings_from(DownloadsTableSettings, job.settings))
