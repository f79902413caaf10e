# The review report (`snakemake --report report.html`): per-video figures and tables, the run summary with
# every rule's benchmarks, and the run diagnostics. Figures are static PNGs drawn with matplotlib, pages come from the
# jinja2 templates in reports/templates/.
REPORT_ITEMS = [
    "timeline.png",
    "contact_sheet.png",
    "scene_probs.png",
    "speakers.html",
    "tracks.html",
]
# the pages of the optional steps' outputs, when they run
REPORT_ITEMS += ["transcript.html"] if config["transcribe"]["enabled"] else []
REPORT_ITEMS += ["exports.html"] if config["export"]["enabled"] else []
VIDEO_OUTPUTS += [
    f"results/{{project}}/{{video}}/report/{item}" for item in REPORT_ITEMS
]
RUN_OUTPUTS = ["results/report/run.html", "results/diagnostics.json"]
# a project's persons page, when identity runs (PERSONS_OUTPUTS: rules/identity.smk)
PERSONS_OUTPUTS += [
    path.replace("persons.json", "report/persons.html") for path in PERSONS_OUTPUTS
]


rule report_video:
    input:
        unpack(transcript_input),
        video="results/{project}/{video}/video.mp4",
        info="results/{project}/{video}/video.json",
        scenes="results/{project}/{video}/scenes.json",
        probs="results/{project}/{video}/scenes_probs.json",
        diarization="results/{project}/{video}/diarization.json",
        tracking="results/{project}/{video}/faces.json",  # tracking.json + speaking/speaker
        env=env_ready("report"),
    output:
        timeline=video_report_item("timeline.png", "Overview", "timeline"),
        contact_sheet=video_report_item("contact_sheet.png", "Scenes", "contact sheet"),
        scene_probs=video_report_item(
            "scene_probs.png", "Scenes", "scene probabilities"
        ),
        speakers=video_report_item("speakers.html", "Diarization", "speakers"),
        tracks=video_report_item("tracks.html", "Tracking", "face tracks"),
        summary="results/{project}/{video}/report/summary.json",
    log:
        "logs/report_video/{project}/{video}.log",
    benchmark:
        "results/benchmarks/report_video/{project}/{video}.tsv"
    conda:
        env_file("report")
    threads: 1
    resources:
        mem_mb=512,  # faces.json streamed; matplotlib (116 MiB at 600 s)
        runtime=30,
    params:
        **step_job(
            {
                "max_thumbnails": config["report"]["max_thumbnails"],
                "scene_threshold": config["scenes"]["threshold"],
            }
        ),
        python=env_python("report"),
        step=step_command("report.video"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"


rule report_transcript:
    input:
        transcript="results/{project}/{video}/transcript.json",
        env=env_ready("report"),
    output:
        page=video_report_item("transcript.html", "Transcript", "transcript"),
    log:
        "logs/report_transcript/{project}/{video}.log",
    benchmark:
        "results/benchmarks/report_transcript/{project}/{video}.tsv"
    conda:
        env_file("report")
    threads: 1
    resources:
        mem_mb=256,
        runtime=10,
    params:
        **step_job({}),
        python=env_python("report"),
        step=step_command("report.video:run_transcript"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"


rule report_exports:
    input:
        **EXPORT_FILES,
        env=env_ready("report"),
    output:
        page=video_report_item("exports.html", "Exports", "exports"),
    log:
        "logs/report_exports/{project}/{video}.log",
    benchmark:
        "results/benchmarks/report_exports/{project}/{video}.tsv"
    conda:
        env_file("report")
    threads: 1
    resources:
        mem_mb=512,  # reads the CSV tables row by row
        runtime=10,
    params:
        **step_job({"review_video": config["export"]["review_video"]}),
        python=env_python("report"),
        step=step_command("report.video:run_exports"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"


rule report_persons:
    input:
        persons="results/{project}/persons.json",
        identity=project_identity,
        env=env_ready("report"),
    output:
        page=report(
            "results/{project}/report/persons.html",
            caption="../reports/persons.rst",
            category="Persons",
            subcategory="{project}",
            labels={"project": "{project}", "video": "all", "figure": "persons"},
        ),
    log:
        "logs/report_persons/{project}.log",
    benchmark:
        "results/benchmarks/report_persons/{project}.tsv"
    conda:
        env_file("report")
    threads: 1
    resources:
        mem_mb=256,
        runtime=10,
    params:
        **step_job({}),
        python=env_python("report"),
        step=step_command("report.video:run_persons"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"


rule report_run:
    input:
        expand("results/{project}/videos.tsv", project=sorted(PROJECTS)),
        video_summaries,  # waited for, not read: the step finds every video from the manifests
        manifests=project_manifests,
        env=env_ready("report"),
    output:
        run=run_report_item("results/report/run.html", "run", "run summary"),
        benchmarks=run_report_item(
            "results/report/benchmarks.html", "benchmarks", "benchmarks"
        ),
        figure=run_report_item(
            "results/report/benchmarks.png", "benchmarks_figure", "job times"
        ),
    log:
        "logs/report_run/all.log",
    benchmark:
        "results/benchmarks/report_run/all.tsv"
    conda:
        env_file("report")
    threads: 1
    resources:
        mem_mb=512,
        runtime=10,
    params:
        **step_job(report_run_settings),
        python=env_python("report"),
        step=step_command("report.run_summary"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
