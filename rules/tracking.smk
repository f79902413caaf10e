# Step 5: every face in every frame with a track id stable within a scene -> tracking.json.
# tracking.engine picks the engine; each engine family has its own env and rule track_faces_<family>
# (the family of each engine is listed in scripts/steps/tracking/engines/__init__.py); the rule of the
# configured family is preferred (ruleorder below), so only its env is built.
from steps.tracking.engines import ENGINES, engine_family

VIDEO_OUTPUTS.append("results/{project}/{video}/tracking.json")

TRACKING = config["tracking"]
TRACKING_FAMILY = engine_family(TRACKING["engine"])
TRACKING_RULES = sorted({f"track_faces_{spec.family}" for spec in ENGINES.values()})
TRACKING_ARGS = (
    f"--engine {TRACKING['engine']} --detect-every {TRACKING['detect_every']}"
    f" --min-score {TRACKING['min_score']} --max-faces {TRACKING['max_faces']}"
    f" --refine-landmarks {int(TRACKING['mediapipe']['refine_landmarks'])}"
    f" --chunk-frames {TRACKING['chunk_frames']}"
    f" --max-gap {TRACKING['max_gap']} --min-iou {TRACKING['min_iou']}"
    f" --max-center-dist {TRACKING['max_center_dist']} --min-track-frames {TRACKING['min_track_frames']}"
    f" --task-model {shlex.quote(TRACKING['mediapipe_tasks']['model'])}"
    f" --task-sha256 {shlex.quote(TRACKING['mediapipe_tasks']['sha256'])}"
    f" --options {shlex.quote(json.dumps(TRACKING.get(TRACKING['engine'], {}), sort_keys=True))}"
)


workflow.ruleorder(
    *sorted(TRACKING_RULES, key=lambda name: name != f"track_faces_{TRACKING_FAMILY}")
)


rule track_faces_mediapipe:
    input:
        video="results/{project}/{video}/video.mp4",
        scenes="results/{project}/{video}/scenes.json",
        env=env_ready("tracking_mediapipe"),
    output:
        "results/{project}/{video}/tracking.json",
    log:
        "logs/track_faces_mediapipe/{project}/{video}.log",
    benchmark:
        "results/benchmarks/track_faces_mediapipe/{project}/{video}.tsv"
    conda:
        "../envs/tracking_mediapipe.yaml"
    threads: TRACKING["threads"]
    resources:
        mem_mb=lambda wildcards, threads: 1024 + 768 * threads,
        runtime=240,
    params:
        python=env_python("tracking_mediapipe"),
        script=script_path("track_faces.py"),
        args=TRACKING_ARGS,
    shell:
        "{params.python} {params.script} --video {input.video} --scenes {input.scenes}"
        " --output {output} --threads {threads} {params.args} --log {log}"


rule track_faces_yunet:
    input:
        video="results/{project}/{video}/video.mp4",
        scenes="results/{project}/{video}/scenes.json",
        env=env_ready("tracking_yunet"),
    output:
        "results/{project}/{video}/tracking.json",
    log:
        "logs/track_faces_yunet/{project}/{video}.log",
    benchmark:
        "results/benchmarks/track_faces_yunet/{project}/{video}.tsv"
    conda:
        "../envs/tracking_yunet.yaml"
    threads: TRACKING["threads"]
    resources:
        mem_mb=lambda wildcards, threads: 1024 + 512 * threads,
        runtime=240,
    params:
        python=env_python("tracking_yunet"),
        script=script_path("track_faces.py"),
        args=TRACKING_ARGS,
    shell:
        "{params.python} {params.script} --video {input.video} --scenes {input.scenes}"
        " --output {output} --threads {threads} {params.args} --log {log}"


rule track_faces_openseeface:
    input:
        video="results/{project}/{video}/video.mp4",
        scenes="results/{project}/{video}/scenes.json",
        env=env_ready("tracking_openseeface"),
    output:
        "results/{project}/{video}/tracking.json",
    log:
        "logs/track_faces_openseeface/{project}/{video}.log",
    benchmark:
        "results/benchmarks/track_faces_openseeface/{project}/{video}.tsv"
    conda:
        "../envs/tracking_openseeface.yaml"
    threads: TRACKING["threads"]
    resources:
        mem_mb=lambda wildcards, threads: 1024 + 512 * threads,
        runtime=240,
    params:
        python=env_python("tracking_openseeface"),
        script=script_path("track_faces.py"),
        args=TRACKING_ARGS,
    shell:
        "{params.python} {params.script} --video {input.video} --scenes {input.scenes}"
        " --output {output} --threads {threads} {params.args} --log {log}"


rule track_faces_eos:
    input:
        video="results/{project}/{video}/video.mp4",
        scenes="results/{project}/{video}/scenes.json",
        env=env_ready("tracking_eos"),
    output:
        "results/{project}/{video}/tracking.json",
    log:
        "logs/track_faces_eos/{project}/{video}.log",
    benchmark:
        "results/benchmarks/track_faces_eos/{project}/{video}.tsv"
    conda:
        "../envs/tracking_eos.yaml"
    threads: TRACKING["threads"]
    resources:
        mem_mb=lambda wildcards, threads: 1536 + 768 * threads,
        runtime=240,
    params:
        python=env_python("tracking_eos"),
        script=script_path("track_faces.py"),
        args=TRACKING_ARGS,
    shell:
        "{params.python} {params.script} --video {input.video} --scenes {input.scenes}"
        " --output {output} --threads {threads} {params.args} --log {log}"
