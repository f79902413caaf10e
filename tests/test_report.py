"""The review report: per-video figures/tables, run summary, diagnostics, `snakemake --report`, headless Chromium,
and webhook notifications."""

import base64
import json
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from build_env import build
from conftest import ROOT, VENV_DIR, run_snakemake
from steps.report.data import (
    faces_at,
    faces_per_frame,
    speaker_table,
    thumbnail_frames,
    track_table,
    video_summary,
)
from steps.report.pages import table_page, tables_page
from vidflow.job import job_command
from vidflow.notify import notify, run_payload
from vidflow.tracking_json import read_tracking

DEMO = ROOT / "resources" / "demo"
ARTIFACTS = ROOT / "test-artifacts"
ITEMS = ["timeline.png", "contact_sheet.png", "scene_probs.png", "speakers.html", "tracks.html"]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    work = tmp_path_factory.mktemp("report")
    run_snakemake(work, config={"input_dir": str(DEMO)})
    run_snakemake(work, "--report", "report.html", config={"input_dir": str(DEMO)})
    return work


def test_every_video_has_its_figures_and_tables(demo_report):
    manifest = json.loads((demo_report / "results/demo_interviews/extracted/manifest.json").read_text())
    videos = sorted(v["video"] for v in manifest["videos"])
    assert videos == ["Lecture-2", "interview_one"]
    for video in videos:
        folder = demo_report / "results/demo_interviews" / video / "report"
        for item in ITEMS:
            data = (folder / item).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" if item.endswith(".png") else b"<table>" in data
        summary = json.loads((folder / "summary.json").read_text())
        diar = json.loads((demo_report / "results/demo_interviews" / video / "diarization.json").read_text())
        assert summary["speakers"] == len(diar["speakers"]) and summary["devices"]["tracking"] == "cpu"
        speakers = (folder / "speakers.html").read_text()
        assert all(name in speakers for name in diar["speakers"])
    # interview_one: 2 scenes (cut at frame 175), a face only in scene 1 (one track, frames 0-174)
    tracks = (demo_report / "results/demo_interviews/interview_one/report/tracks.html").read_text()
    assert re.search(r"<td>1</td><td>1</td><td>0</td><td>174</td><td>175</td>", tracks)


def test_run_summary_benchmarks_and_diagnostics(demo_report):
    run = (demo_report / "results/report/run.html").read_text()
    # done, no reason; 2 videos done, 0 failed, 0 members skipped (the text file is no video candidate)
    assert re.search(r"<td>demo_interviews</td><td>done</td><td>-</td><td>2</td><td>0</td><td>0</td>", run)
    assert len(re.findall(r"<td>demo_interviews</td><td>[\w-]+</td><td>done</td><td>-</td>", run)) == 2
    bench = (demo_report / "results/report/benchmarks.html").read_text()
    for rule in ("extract", "convert", "scenes", "tracking", "finalize", "report_video"):
        assert f"<td>{rule}</td>" in bench
    diag = json.loads((demo_report / "results/diagnostics.json").read_text())
    assert diag["ffmpeg"].startswith("ffmpeg version")
    assert diag["environments"]["scenes"]["key"]["torch"] == "2.13.0"
    assert diag["environments"]["report"]["pip"]["matplotlib"] == "3.10.8"
    assert diag["steps"]["devices"]["scenes"] == {"cpu": 2}
    assert diag["steps"]["backends"]["diarization"] == {"segment_embed": 2}
    assert diag["gpu"]["nvidia_smi"] and diag["videos"] == 2


def test_report_html_embeds_each_videos_items(demo_report):
    text = (demo_report / "report.html").read_text()
    assert len(text) > 100_000
    for video in ("Lecture-2", "interview_one"):
        for item in ITEMS:
            assert f"results/demo_interviews/{video}/report/{item}" in text
    for caption in ("Contact sheet of", "TransNetV2's per-frame transition probability", "Run diagnostics"):
        assert caption in text
    for label in ("contact sheet", "scene probabilities", "face tracks", "timeline", "diagnostics"):
        assert f'"{label}"' in text
    assert base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()[:8] in text  # PNGs embedded as data URIs


def test_report_renders_in_headless_chromium(demo_report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium); report rendering not checked")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", f"--screenshot={shot}",
           "--window-size=1280,900", (demo_report / "report.html").as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), proc.stderr[-3000:]
    assert "Uncaught" not in proc.stderr, proc.stderr[-3000:]
    from skimage.io import imread

    pixels = imread(shot)[..., :3].astype(float)
    assert pixels.shape[:2] == (900, 1280)
    assert pixels.std() > 10, "blank screenshot"


# --- pure functions ---

def test_tables_from_step_outputs():
    diar = {"speakers": ["SPEAKER_00", "SPEAKER_01"], "segments": [
        {"start": 0.0, "end": 2.0, "speaker": "SPEAKER_00"}, {"start": 2.5, "end": 3.5, "speaker": "SPEAKER_01"},
        {"start": 4.0, "end": 5.0, "speaker": "SPEAKER_00"}]}
    face = {"bbox": [0, 0, 10, 10], "score": 0.9}
    tracking = {"frames": [{"frame": 0, "faces": [{**face, "track_id": 1, "speaker": "SPEAKER_00"}]},
                           {"frame": 1, "faces": [{**face, "track_id": 1, "speaker": "SPEAKER_00", "score": 0.7},
                                                  {**face, "track_id": 2}]}]}
    scenes = {"scenes": [{"start_frame": 0, "end_frame": 1}]}
    rows = speaker_table(diar, tracking)
    assert rows[0] == {"speaker": "SPEAKER_00", "talk_time_s": 3.0, "share_pct": 75.0, "turns": 2,
                       "first_turn_s": 0.0, "face_track": "1"}
    assert rows[1]["face_track"] == "-" and rows[1]["turns"] == 1
    tracks = track_table(tracking, scenes)
    assert tracks[0] == {"track_id": 1, "scene": 1, "first_frame": 0, "last_frame": 1, "frames": 2,
                         "mean_score": 0.8, "speaker": "SPEAKER_00"}
    assert tracks[1]["speaker"] == "-"
    many = {"scenes": [{"start_frame": 10 * i, "end_frame": 10 * i + 9} for i in range(100)]}
    picks = thumbnail_frames(many, 24)
    assert len(picks) == 24 and picks[0] == (1, 4) and picks[-1][0] <= 100


def test_tables_and_figure_data_from_the_streamed_faces_equal_the_full_load(tmp_path):
    """The report reads faces.json one frame at a time and keeps only what it shows: same tables, same figures."""
    landmarks = [[1.5 * i, 2.5, -0.5] for i in range(478)]
    frames = []
    for f in range(40):
        faces = [{"track_id": 1 + f // 20, "bbox": [f, 2.0, 30.0, 40.0], "landmarks": landmarks,
                  "blendshapes": {"jawOpen": 0.1}, "speaking": f % 3 == 0, "speaker": "SPEAKER_00" if f < 30 else None,
                  **({"score": 0.5 + f / 100} if f % 5 == 0 else {})}]
        frames.append({"frame": f, "faces": faces if f % 7 else []})
    tracking = {"fps": 25, "width": 320, "height": 180, "frame_count": 40, "engine": "mediapipe", "device": "cpu",
                "frames": frames}
    (tmp_path / "faces.json").write_text(json.dumps(tracking, sort_keys=True, separators=(",", ":")))
    full, light = json.loads((tmp_path / "faces.json").read_text()), read_tracking(tmp_path / "faces.json")
    assert "landmarks" not in light["frames"][1]["faces"][0] and light["width"] == 320
    diar = {"speakers": ["SPEAKER_00"], "segments": [{"start": 0.0, "end": 1.0, "speaker": "SPEAKER_00"}]}
    scenes = {"fps": 25, "frame_count": 40, "scenes": [{"start_frame": 0, "end_frame": 19},
                                                       {"start_frame": 20, "end_frame": 39}]}
    info = {"output": {"duration": 1.6}}
    for data in (speaker_table(diar, full), track_table(full, scenes), faces_per_frame(full),
                 [faces_at(full, f) for f in range(40)], video_summary("p", "v", info, scenes, diar, full)):
        assert data  # non-trivial
    assert speaker_table(diar, light) == speaker_table(diar, full)
    assert track_table(light, scenes) == track_table(full, scenes)
    assert faces_per_frame(light) == faces_per_frame(full)
    assert [[(x["track_id"], x["bbox"]) for x in faces_at(light, f)] for f in range(40)] == [
        [(x["track_id"], x["bbox"]) for x in faces_at(full, f)] for f in range(40)]
    assert video_summary("p", "v", info, scenes, diar, light) == video_summary("p", "v", info, scenes, diar, full)


def test_pages_from_the_templates_escape_every_value_and_show_missing_ones():
    columns = [("name", "name <i>"), ("value", "value")]
    page = table_page("Speakers: a & b", [{"name": "<script>alert('x')</script>", "value": None},
                                          {"name": 'say "hi"', "value": 0.5}], columns, "backend x&y")
    assert page.startswith('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Speakers: a &amp; b</title>')
    assert page.endswith("</table></body></html>\n") and "<script>" not in page
    assert "<h3>Speakers: a &amp; b</h3><p>backend x&amp;y</p><table><thead><tr><th>name &lt;i&gt;</th>" in page
    assert ("<tr><td>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;</td><td>-</td></tr>"
            "<tr><td>say &quot;hi&quot;</td><td>0.5</td></tr></tbody>") in page
    page = tables_page("Run summary", [("Projects", [], columns, ""), ("Videos", [{"name": "v"}], columns, "")])
    assert "<title>Run summary</title>" in page and "<body><h2>Run summary</h2><h3>Projects</h3><table>" in page
    assert '<tbody><tr><td colspan="2">none</td></tr></tbody>' in page
    assert "<h3>Videos</h3><table>" in page and "<tr><td>v</td><td>-</td></tr>" in page


BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_run_pages_list_every_video_with_its_status_and_every_rule_with_its_benchmarks(tmp_path):
    """report_run's entry script on a job as its rule writes it: a video done, one failed (its log's error line,
    escaped), a skipped member, and the rules' benchmark tables aggregated from Snakemake's TSVs."""
    results, logs, bench = tmp_path / "results", tmp_path / "logs", tmp_path / "results" / "benchmarks"
    (results / "p1" / "extracted").mkdir(parents=True)
    manifest = results / "p1" / "extracted" / "manifest.json"
    manifest.write_text(json.dumps({"project": "p1", "videos": [{"video": "v1", "duration": 2.0},
                                                                 {"video": "v2", "duration": 1.0}],
                                    "skipped": [{"member": "x.mp4", "reason": "moov atom not found"}]}))
    (results / "p1" / "v1" / "report").mkdir(parents=True)
    (results / "p1" / "v1" / "video.mp4").write_bytes(b"mp4")
    (results / "p1" / "v1" / "report" / "summary.json").write_text(json.dumps(
        {"project": "p1", "video": "v1", "duration": 2.0, "frames": 50, "scenes": 2, "speakers": 1, "tracks": 3}))
    (logs / "convert" / "p1").mkdir(parents=True)
    (logs / "convert" / "p1" / "v2.log").write_text(
        "2026-01-01 10:00:00,000 ERROR convert: v2.mp4: \"moov\" atom's missing & <bad>\n")
    for rule, name, s, rss, cpu in [("convert", "p1/v1", "2.0000", "100.25", "1.5"), ("convert", "p1/v2", "3.0000",
                                    "300.5", "NA"), ("report_run", "all", "0.5000", "-", "-")]:
        (bench / rule / name).parent.mkdir(parents=True, exist_ok=True)
        (bench / rule / f"{name}.tsv").write_text(BENCHMARK_HEADER + f"{s}\t0:00:02\t{rss}\t1\t-\t-\t0\t0\t50\t{cpu}\n")
    out = tmp_path / "report"
    outputs = {"run": out / "run.html", "benchmarks": out / "benchmarks.html", "figure": out / "benchmarks.png"}
    settings = {"projects": {"p1": {}}, "expected": ["video.mp4"], "results": "results", "logs": "logs",
                "benchmarks": "results/benchmarks"}
    python = build(ROOT / "envs" / "report.yaml", VENV_DIR / "report")
    command = job_command(python, "report.run_summary", {"manifests": [manifest]}, outputs, settings,
                          log=tmp_path / "report_run.log")
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr + (tmp_path / "report_run.log").read_text()
    run = outputs["run"].read_text()
    # failed (a video failed), 1 done, 1 failed, 1 skipped; 2 s of media, 50 frames over 5 s of jobs
    assert ("<tr><td>p1</td><td>failed</td><td>1 video(s) failed</td><td>1</td><td>1</td><td>1</td>"
            "<td>x.mp4: moov atom not found</td><td>2.0</td><td>50</td><td>5.0</td><td>0.4</td><td>10.0</td></tr>"
            ) in run
    assert ("<tr><td>p1</td><td>v1</td><td>done</td><td>-</td><td>2.0</td><td>50</td><td>2</td><td>1</td><td>3</td>"
            "<td>2.0</td><td>1.0</td></tr>") in run
    assert ("<td>v2</td><td>failed</td><td>convert: v2.mp4: &quot;moov&quot; atom&#x27;s missing &amp; &lt;bad&gt;"
            "</td><td>1.0</td><td>-</td>") in run
    bench_page = outputs["benchmarks"].read_text()
    assert "<p>3 benchmark file(s) in results/benchmarks</p>" in bench_page
    # per rule: jobs, total, mean, max (s), max RSS (MB), CPU time (s: of the jobs that recorded it)
    assert "<tr><td>convert</td><td>2</td><td>5.0</td><td>2.5</td><td>3.0</td><td>300.5</td><td>1.5</td></tr>" in (
        bench_page)
    assert "<tr><td>report_run</td><td>1</td><td>0.5</td><td>0.5</td><td>0.5</td><td>-</td><td>-</td></tr>" in (
        bench_page)
    assert outputs["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


OVERLAP_PLOT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import matplotlib.pyplot as plt
from steps.report.plots import draw_overlaps, plot_timeline
diarization, out = json.loads(sys.argv[2]), sys.argv[3]
scenes = {"fps": 25, "frame_count": 125, "scenes": [{"start_time": 0.0, "end_time": 4.96}]}
tracking = {"frames": [{"frame": f, "faces": []} for f in range(125)]}
plot_timeline(out, "overlap", scenes, diarization, tracking)
fig, ax = plt.subplots()
patches = draw_overlaps(ax, diarization["segments"])
print(json.dumps([[p.get_x(), p.get_x() + p.get_width(), p.get_hatch()] for p in patches]))
"""


def test_timeline_hatches_where_speakers_overlap(tmp_path):
    python = build(ROOT / "envs" / "report.yaml", VENV_DIR / "report")
    segments = [{"start": 0.5, "end": 2.5, "speaker": "SPEAKER_00"},
                {"start": 2.0, "end": 4.0, "speaker": "SPEAKER_01"},
                {"start": 4.0, "end": 4.5, "speaker": "SPEAKER_00"}]
    diarization = {"duration": 5.0, "speakers": ["SPEAKER_00", "SPEAKER_01"], "segments": segments}
    proc = subprocess.run([str(python), "-c", OVERLAP_PLOT, str(ROOT / "scripts"), json.dumps(diarization),
                           str(tmp_path / "timeline.png")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [[2.0, 2.5, "////"]]  # the turns that only touch at 4.0 s do not overlap
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- notifications ---

class _Hook(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_gets_success_and_error_payloads():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        assert notify(url, run_payload("success", ["b", "a"], "/w"), timeout=5)
        assert notify(url, run_payload("error", ["a"], "/w", "x" * 5000), timeout=5)
    finally:
        server.shutdown()
    ok, err = _Hook.received[-2:]
    assert ok == {"workflow": "video-analysis", "status": "success", "projects": ["a", "b"], "workdir": "/w",
                  "message": ""}
    assert err["status"] == "error" and len(err["message"]) == 2000


def test_unreachable_or_empty_webhook_never_raises():
    assert notify("", {"status": "success"}) is False
    assert notify("http://127.0.0.1:9/hook", {"status": "error"}, timeout=1) is False
    assert notify("not a url", {"status": "error"}, timeout=1) is False
