"""Inputs from URLs, against a local HTTP server on 127.0.0.1 only."""

import io
import json
import re
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import run_snakemake
from steps.download import (download_link, link_id, manual_reason, normalise_url, read_sources, url_filename)
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
    return download_link({"url": server.url + path, **link}, out, tmp_path / "dl", timeout=1, retries=2, backoff=0.05)


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
    again = download_link({"url": server.url + "/a.zip"}, tmp_path / "other", tmp_path / "dl", timeout=1)
    assert again["status"] == "duplicate" and again["reason"] == "same URL"
    assert server.hits == {"/a.zip": 1, "/b.zip": 1}


def test_workflow_downloads_extracts_and_reports(server, tmp_path, archive_bytes):
    server.file("/talks.zip", archive_bytes)
    server.file("/copy.zip", archive_bytes)
    sources = tmp_path / "links.json"
    sources.write_text(json.dumps([{"url": server.url + "/talks.zip"}, {"url": server.url + "/copy.zip"},
                                   {"url": server.url + "/gone.zip"}, {"url": "https://fromsmash.com/abc"}]))
    (tmp_path / "input").mkdir()
    config = {"input_dir": str(tmp_path / "input"), "sources": str(sources)}
    proc = run_snakemake(tmp_path, config=config, check=False)
    assert proc.returncode != 0
    assert re.search(r"/gone\.zip: download failed after 1 attempt\(s\) \(HTTP 404\)", proc.stderr)
    assert "fromsmash.com/abc: manual download required" in proc.stderr
    assert (tmp_path / "results" / "talks" / "talk" / "video.mp4").exists()
    copy = json.loads((tmp_path / "results" / "copy" / "extracted" / "manifest.json").read_text())
    assert copy["videos"] == [] and copy["source"]["note"] == f"same content as {server.url}/talks.zip"
    # fix the sources: the table is written, and nothing is downloaded again
    sources.write_text(json.dumps([{"url": server.url + "/talks.zip"}, {"url": server.url + "/copy.zip"},
                                   {"url": "https://fromsmash.com/abc"}]))
    run_snakemake(tmp_path, config=config)
    table = (tmp_path / "results" / "downloads.tsv").read_text().splitlines()
    assert table[0].split("\t") == ["url", "status", "reason", "file", "sha256", "size"]
    # stored once: whichever of the two identical downloads finished first holds the file
    assert sorted(row.split("\t")[1] for row in table[1:3]) == ["downloaded", "duplicate"]
    assert table[3].split("\t")[1] == "skipped"
    assert "manual download required" in table[3]
    assert server.hits == {"/talks.zip": 1, "/copy.zip": 1, "/gone.zip": 1}


def test_identical_content_downloaded_in_parallel_is_stored_once(server, tmp_path, archive_bytes):
    """The history records a file only once it is in place, so a parallel twin sees it."""
    from concurrent.futures import ThreadPoolExecutor

    for name in ("a", "b", "c"):
        server.file(f"/{name}.zip", archive_bytes)
    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(lambda name: fetch(server, tmp_path, f"/{name}.zip"), ("a", "b", "c")))
    assert sorted(s["status"] for s in statuses) == ["downloaded", "duplicate", "duplicate"]
    assert len({s["file"] for s in statuses}) == 1 and len(list((tmp_path / "dl").rglob("*.zip"))) == 1
