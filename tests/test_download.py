"""Inputs from URLs, against a local HTTP server on 127.0.0.1 only."""

import io
import json
import random
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import make_testsrc, read_tsv, run_snakemake
from steps.download import (
    DownloadSettings,
    download_link,
    link_id,
    manual_reason,
    normalise_url,
    read_sources,
    url_filename,
)
from vidflow.errors import UserError


class Server:
    """Routes: path -> callable(handler) ; counts requests per path."""

    def __init__(self):
        self.routes, self.hits = {}, {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                server.routes.get(path, lambda h: h.send_error(404))(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def file(self, path, data, headers=()):
        def send(handler):
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            for key, value in headers:
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        self.routes[path] = send

    def redirect(self, path, target):
        def send(handler):
            handler.send_response(302)
            handler.send_header("Location", target)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        self.routes[path] = send

    def drop_first(self, path, data):
        """First request: promise all bytes, send half, close. Later requests: the whole file."""
        self.file(path, data)
        whole = self.routes[path]

        def send(handler):
            if self.hits[path] == 1:
                handler.send_response(200)
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data[: len(data) // 2])
                handler.wfile.flush()
                handler.close_connection = True
                return
            whole(handler)
        self.routes[path] = send

    def slow(self, path, seconds):
        def send(handler):
            time.sleep(seconds)
            handler.send_response(200)
            handler.send_header("Content-Length", "1")
            handler.end_headers()
            handler.wfile.write(b"x")
        self.routes[path] = send


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.httpd.shutdown()


@pytest.fixture(scope="module")
def archive_bytes(tiny_video):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("talk.mp4", tiny_video.read_bytes())
    return buffer.getvalue()


def fetch(server, tmp_path, path, **link):
    out = tmp_path / "dl" / link_id(server.url + path)
    settings = DownloadSettings(dir=str(tmp_path / "dl"), timeout=1, retries=2)
    return download_link({"url": server.url + path, **link}, out, settings, backoff=0.05)


def test_link_helpers():
    assert normalise_url("https://www.dropbox.com/s/abc/talks.zip?dl=0") == "https://www.dropbox.com/s/abc/talks.zip?dl=1"
    assert normalise_url("https://www.dropbox.com/scl/fi/x/a.zip?rlkey=k&dl=0") == \
        "https://www.dropbox.com/scl/fi/x/a.zip?rlkey=k&dl=1"
    assert normalise_url("https://example.org/a.zip?dl=0") == "https://example.org/a.zip?dl=0"
    assert manual_reason("https://fromsmash.com/abc").startswith("manual download required")
    assert manual_reason("https://www.swisstransfer.com/d/xyz").startswith("manual download required")
    assert manual_reason("https://example.org/x.zip") is None
    assert url_filename("https://h/p/My%20Talks.tar.gz?x=1") == "My_Talks.tar.gz"
    assert url_filename("https://h/get") == "get"
    assert link_id("https://www.dropbox.com/s/a.zip?dl=0") == link_id("https://www.dropbox.com/s/a.zip?dl=1")


def test_read_sources_json_and_tsv(tmp_path):
    js = tmp_path / "links.json"
    js.write_text(json.dumps([{"url": "https://h/a.zip", "timestamp": 1}, {"url": "https://h/a.zip"},
                              {"url": "https://h/b.zip", "sha256": "AB", "size": 3}]))
    assert read_sources(js) == [{"url": "https://h/a.zip"}, {"url": "https://h/b.zip", "sha256": "ab", "size": 3}]
    tsv = tmp_path / "links.tsv"
    tsv.write_text("url\tsha256\nhttps://h/c.zip\t\n")
    assert read_sources(tsv) == [{"url": "https://h/c.zip"}]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"link": "x"}]')
    with pytest.raises(UserError, match="each with a 'url'"):
        read_sources(bad)


def test_normal_download_and_history(server, tmp_path, archive_bytes):
    server.file("/talks.zip", archive_bytes)
    status = fetch(server, tmp_path, "/talks.zip")
    assert status["status"] == "downloaded" and status["size"] == len(archive_bytes)
    assert open(status["file"], "rb").read() == archive_bytes
    history = json.loads((tmp_path / "dl" / "download_history.json").read_text())
    assert [(h["url"], h["sha256"], h["file"]) for h in history] == [(server.url + "/talks.zip", status["sha256"],
                                                                      status["file"])]
    assert not list((tmp_path / "dl").rglob(".part-*"))


def test_404_is_one_line_and_leaves_nothing(server, tmp_path):
    with pytest.raises(UserError) as err:
        fetch(server, tmp_path, "/missing.zip")
    assert "HTTP 404" in str(err.value) and "\n" not in str(err.value)
    assert server.hits["/missing.zip"] == 1, "4xx must not be retried"
    assert [p.name for p in (tmp_path / "dl").iterdir() if not p.name.startswith(".")] == []


def test_dropped_connection_is_retried_without_partial_files(server, tmp_path, archive_bytes):
    server.drop_first("/drop.zip", archive_bytes)
    status = fetch(server, tmp_path, "/drop.zip")
    assert server.hits["/drop.zip"] == 2
    assert open(status["file"], "rb").read() == archive_bytes
    assert not list((tmp_path / "dl").rglob(".part-*"))


def test_a_killed_download_s_staging_folder_and_part_file_are_removed(server, tmp_path, archive_bytes):
    server.file("/talks.zip", archive_bytes)
    out = tmp_path / "dl" / link_id(server.url + "/talks.zip")
    stale = out.parent / f".{out.name}.k2j4h1x0"  # what a SIGKILL in the middle of the transfer leaves
    stale.mkdir(parents=True)
    (stale / ".part-ab_cd123").write_bytes(archive_bytes[:1000])
    status = fetch(server, tmp_path, "/talks.zip")
    assert open(status["file"], "rb").read() == archive_bytes
    assert not stale.exists() and not list((tmp_path / "dl").rglob(".part-*"))


def test_slow_server_times_out(server, tmp_path):
    server.slow("/slow.zip", 3)
    start = time.monotonic()
    with pytest.raises(UserError, match="after 3 attempt"):
        fetch(server, tmp_path, "/slow.zip")
    assert time.monotonic() - start < 8


def test_redirect_chain_and_content_disposition(server, tmp_path, archive_bytes):
    server.redirect("/r1", "/r2")
    server.redirect("/r2", "/final")
    server.file("/final", archive_bytes, [("Content-Disposition", 'attachment; filename="Talk 1.zip"')])
    status = fetch(server, tmp_path, "/r1")
    assert status["file"].endswith("/Talk_1.zip")


def test_wrong_checksum_or_size_is_refused(server, tmp_path, archive_bytes):
    server.file("/talks.zip", archive_bytes)
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch(server, tmp_path, "/talks.zip", sha256="0" * 64)
    with pytest.raises(UserError, match="size mismatch"):
        fetch(server, tmp_path, "/talks.zip", size=1)
    assert not (tmp_path / "dl" / "download_history.json").exists()


def test_same_content_is_stored_once_and_same_url_never_twice(server, tmp_path, archive_bytes):
    server.file("/a.zip", archive_bytes)
    server.file("/b.zip", archive_bytes)
    first = fetch(server, tmp_path, "/a.zip")
    second = fetch(server, tmp_path, "/b.zip")
    assert second["status"] == "duplicate" and second["file"] == first["file"]
    assert len(list((tmp_path / "dl").rglob("*.zip"))) == 1
    # the same URL into a fresh folder (e.g. another working directory sharing the downloads): no request
    again = download_link({"url": server.url + "/a.zip"}, tmp_path / "other",
                          DownloadSettings(dir=str(tmp_path / "dl"), timeout=1, retries=3))
    assert again["status"] == "duplicate" and again["reason"] == "same URL"
    assert server.hits == {"/a.zip": 1, "/b.zip": 1}


def undecodable_copy(video, path):
    """``video`` with every byte of its media data replaced by noise: ffprobe still reads its streams from the header,
    but no frame decodes (a damaged download the old system would have processed blind)."""
    data = bytearray(video.read_bytes())
    offset = 0
    while data[offset + 4:offset + 8] != b"mdat":
        offset += int.from_bytes(data[offset:offset + 4], "big")
    size = int.from_bytes(data[offset:offset + 4], "big")
    data[offset + 8:offset + size] = random.Random(1).randbytes(size - 8)
    path.write_bytes(data)


def test_a_failed_video_and_a_dead_link_are_listed_with_their_reasons_and_run_again(server, tmp_path, archive_bytes):
    """--keep-going: one video fails, one link answers 404. The tables list every item with its status and the
    reason from the log, Snakemake still reports the failure, and the next run tries the failed jobs again."""
    server.file("/talks.zip", archive_bytes)
    server.file("/copy.zip", archive_bytes)
    sources = tmp_path / "links.json"
    sources.write_text(json.dumps([{"url": server.url + "/talks.zip"}, {"url": server.url + "/copy.zip"},
                                   {"url": server.url + "/gone.zip"}, {"url": "https://fromsmash.com/abc"}]))
    (tmp_path / "input").mkdir()
    make_testsrc(tmp_path / "input" / "fine.mp4", fps=30)  # encoded, not remuxed: conversion decodes every frame
    undecodable_copy(tmp_path / "input" / "fine.mp4", tmp_path / "input" / "broken.mp4")
    config = {"input_dir": str(tmp_path / "input"), "sources": str(sources)}
    proc = run_snakemake(tmp_path, "--keep-going", config=config, check=False)
    assert proc.returncode != 0
    assert re.search(r"/gone\.zip: download failed after 1 attempt\(s\) \(HTTP 404\)", proc.stderr)
    assert "fromsmash.com/abc: manual download required" in proc.stderr
    results = tmp_path / "results"
    assert (results / "talks" / "talk" / "video.mp4").exists()
    copy = json.loads((results / "copy" / "extracted" / "manifest.json").read_text())
    assert copy["videos"] == [] and copy["source"]["note"] == f"same content as {server.url}/talks.zip"
    # downloads.tsv: every link, the 404 and the manual one with their reasons
    links = {row["url"].removeprefix(server.url): row for row in read_tsv(results / "downloads.tsv")}
    assert sorted(links) == ["/copy.zip", "/gone.zip", "/talks.zip", "https://fromsmash.com/abc"]
    assert sorted([links["/talks.zip"]["status"], links["/copy.zip"]["status"]]) == ["downloaded", "duplicate"]
    assert (links["/gone.zip"]["status"], links["/gone.zip"]["reason"]) == (
        "failed", "download failed after 1 attempt(s) (HTTP 404)")
    assert (links["https://fromsmash.com/abc"]["status"], links["https://fromsmash.com/abc"]["reason"]) == (
        "skipped", "manual download required")
    # videos.tsv of the project with the failed video: both videos, the failure with the error line of its log
    videos = {row["video"]: row for row in read_tsv(results / "_loose" / "videos.tsv")}
    assert videos["fine"]["status"] == "done" and videos["fine"]["frames"] == "25"
    failed = [(log.parts[-3], line.split(" ERROR vidflow: ", 1)[1]) for log in (tmp_path / "logs").glob(
        "*/_loose/broken.log") for line in log.read_text().splitlines() if " ERROR " in line]
    assert len(failed) == 1, failed
    assert videos["broken"]["status"] == "failed" and videos["broken"]["reason"].startswith(
        f"{failed[0][0]}: {failed[0][1][:200]}")
    assert [row["status"] for row in read_tsv(results / "talks" / "videos.tsv")] == ["done"]
    # the run report: every project and video with its status
    run = (results / "report" / "run.html").read_text()
    assert re.search(r"<td>_loose</td><td>failed</td><td>1 video\(s\) failed</td><td>1</td><td>1</td>", run)
    assert re.search(r"<td>gone</td><td>failed</td><td>download: [^<]*/gone\.zip: download failed", run)
    assert re.search(r"<td>talks</td><td>done</td><td>-</td><td>1</td><td>0</td>", run)
    assert re.search(r"<td>_loose</td><td>broken</td><td>failed</td><td>" + re.escape(failed[0][0]), run)
    assert "<td>_loose</td><td>fine</td><td>done</td>" in run
    # the next run tries the failed jobs again (and they fail again); the tables stay as they were
    tables = {p: p.stat().st_mtime_ns for p in (*results.glob("*/videos.tsv"), results / "downloads.tsv")}
    again = run_snakemake(tmp_path, "--keep-going", config=config, check=False)
    assert again.returncode != 0
    assert {"download", failed[0][0]} <= set(re.findall(r"^Error in rule (\w+):", again.stderr, flags=re.M))
    assert {p: p.stat().st_mtime_ns for p in tables} == tables
    # fix the input and the sources: the tables are remade by their rules, and nothing is downloaded again
    (tmp_path / "input" / "broken.mp4").unlink()
    sources.write_text(json.dumps([{"url": server.url + "/talks.zip"}, {"url": server.url + "/copy.zip"},
                                   {"url": "https://fromsmash.com/abc"}]))
    run_snakemake(tmp_path, config=config)
    assert [(row["video"], row["status"]) for row in read_tsv(results / "_loose" / "videos.tsv")] == [("fine", "done")]
    assert [row["status"] for row in read_tsv(results / "downloads.tsv")][2:] == ["skipped"]
    assert "<td>failed</td>" not in (results / "report" / "run.html").read_text()
    assert server.hits == {"/talks.zip": 1, "/copy.zip": 1, "/gone.zip": 2}


def test_identical_content_downloaded_in_parallel_is_stored_once(server, tmp_path, archive_bytes):
    """The history records a file only once it is in place, so a parallel twin sees it."""
    from concurrent.futures import ThreadPoolExecutor

    for name in ("a", "b", "c"):
        server.file(f"/{name}.zip", archive_bytes)
    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(lambda name: fetch(server, tmp_path, f"/{name}.zip"), ("a", "b", "c")))
    assert sorted(s["status"] for s in statuses) == ["downloaded", "duplicate", "duplicate"]
    assert len({s["file"] for s in statuses}) == 1 and len(list((tmp_path / "dl").rglob("*.zip"))) == 1
