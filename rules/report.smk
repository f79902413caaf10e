# The review report (`snakemake --report report.html`): per-video figures and tables, the run summary with
# every rule's benchmarks, and the run diagnostics. Figures are static PNGs drawn with matplotlib.
REPORT_ITEMS = [
    "timeline.png",
    "contact_sheet.png",
    "scene_probs.png",
    "speakers.html",
    "tracks.html",
]
VIDEO_OUTPUTS += [
    f"results/{{project}}/{{video}}/report/{item}" for item in REPORT_ITEMS
]
RUN_OUTPUTS = ["results/report/run.html", "results/diagnostics.json"]


rule report_video:
    input:
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
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=512,  # faces.json streamed; matplotlib (116 MiB at 600 s)
        runtime=30,
    params:
        python=env_python("report"),
        script=script_path("report_figures.py"),
        threshold=config["scenes"]["threshold"],
        max_thumbnails=config["report"]["max_thumbnails"],
        out_dir=subpath(output.summary, parent=True),
    shell:
        "{params.python} {params.script} --project {wildcards.project} --video-name {wildcards.video}"
        " --video {input.video} --info {input.info} --scenes {input.scenes} --probs {input.probs}"
        " --diarization {input.diarization} --tracking {input.tracking} --threshold {params.threshold}"
        " --max-thumbnails {params.max_thumbnails} --out-dir {params.out_dir} --log {log}"


rule report_run:
    input:
        tables=expand("results/{project}/videos.tsv", project=sorted(PROJECTS)),
        manifests=project_manifests,
        summaries=video_summaries,
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
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=512,
        runtime=10,
    params:
        python=env_python("report"),
        script=script_path("report_run.py"),
        projects=projects_arg,
        expect=video_outputs_arg,
        benchmarks="results/benchmarks",
    shell:
        "{params.python} {params.script} --projects {params.projects} --expect {params.expect}"
        " --benchmarks {params.benchmarks} --run-html {output.run} --benchmarks-html {output.benchmarks}"
        " --benchmarks-png {output.figure} --log {log}"


rule diagnostics:
    input:
        tables=expand("results/{project}/videos.tsv", project=sorted(PROJECTS)),
        summaries=video_summaries,
        env=env_ready("report"),
    output:
        json="results/diagnostics.json",
        html=run_report_item(
            "results/report/diagnostics.html", "diagnostics", "diagnostics"
        ),
    log:
        "logs/diagnostics/all.log",
    benchmark:
        "results/benchmarks/diagnostics/all.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=256,
        runtime=10,
    params:
        python=env_python("report"),
        script=script_path("diagnostics.py"),
        env_files=" ".join(_from_workdir(p) for p in sorted(ENVS_DIR.glob("*.yaml"))),
        snakemake_version=snakemake_version,
        gpus=shlex.quote(
            json.dumps(
                {
                    "convert": config["convert"]["gpu"],
                    "detect_scenes": config["scenes"]["gpu"],
                    "diarization": config["audio"]["gpu"],
                },
                sort_keys=True,
            )
        ),
    shell:
        "{params.python} {params.script} --env-files {params.env_files} --summaries {input.summaries}"
        " --snakemake-version {params.snakemake_version} --gpu-requests {params.gpus}"
        " --json {output.json} --html {output.html} --log {log}"
