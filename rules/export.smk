# Step export: each video's results for ELAN, Praat, subtitles, pandas/R and a review video (results/.../export/).
# On by default (export.enabled); review.mp4 only with export.review_video. Reads faces.json streamed, once.
EXPORT = config["export"]
EXPORT_DIR = "results/{project}/{video}/export"
EXPORT_FILES = {
    "eaf": f"{EXPORT_DIR}/{{video}}.eaf",
    "textgrid": f"{EXPORT_DIR}/{{video}}.TextGrid",
    "vtt": f"{EXPORT_DIR}/{{video}}.vtt",
    "faces_parquet": f"{EXPORT_DIR}/faces.parquet",
    "faces_csv": f"{EXPORT_DIR}/faces.csv",
    "turns_parquet": f"{EXPORT_DIR}/turns.parquet",
    "turns_csv": f"{EXPORT_DIR}/turns.csv",
}
if EXPORT["review_video"]:
    EXPORT_FILES["review"] = f"{EXPORT_DIR}/review.mp4"
if EXPORT["enabled"]:
    VIDEO_OUTPUTS += list(EXPORT_FILES.values())


# The transcript, when its step runs (results/{project}/{video}/transcript.json), adds tiers, cues and table rows.
EXPORT_INPUTS = {}
if config["transcribe"]["enabled"]:
    EXPORT_INPUTS["transcript"] = "results/{project}/{video}/transcript.json"

# review.mp4 goes into the --report too (Snakemake's report embeds a video and plays it)
EXPORT_OUTPUTS = dict(EXPORT_FILES)
if "review" in EXPORT_OUTPUTS:
    EXPORT_OUTPUTS["review"] = report(
        EXPORT_FILES["review"],
        caption="../reports/review_video.rst",
        category="Review video",
        subcategory="{project}",
        labels={"project": "{project}", "video": "{video}", "figure": "review video"},
    )


rule export:
    input:
        **EXPORT_INPUTS,
        video="results/{project}/{video}/video.mp4",
        diarization="results/{project}/{video}/diarization.json",
        scenes="results/{project}/{video}/scenes.json",
        faces="results/{project}/{video}/faces.json",
        speakers="results/{project}/{video}/speakers.json",
        env=env_ready("export"),
    output:
        **EXPORT_OUTPUTS,
    log:
        "logs/export/{project}/{video}.log",
    benchmark:
        "results/benchmarks/export/{project}/{video}.tsv"
    # The longest job after link_speakers (the review video): started before the small jobs that are ready with it
    # (reduce, report_video), so that finalize need not wait for it (benchmarks/README.md, issue 33).
    priority: 1
    conda:
        env_file("export")
    threads: branch_threads(EXPORT["threads"])
    resources:
        mem_mb=2048,  # measured peak RSS: 423 MB at 600 s of 640x360 (benchmarks/export_speed.py), FFmpeg included
        runtime=30,
    params:
        **step_job(EXPORT),
        python=env_python("export"),
        step=step_command("export"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
