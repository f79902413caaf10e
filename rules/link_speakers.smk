# Step 5b: who speaks on screen. Each diarization speaker linked to the face tracks whose mouth opens and closes with
# its voice (loudness of the audio) -> faces.json (tracking.json + speaking/speaker) and speakers.json.
# A rule of its own, so changing audio or link settings does not rerun tracking.
VIDEO_OUTPUTS += [
    "results/{project}/{video}/faces.json",
    "results/{project}/{video}/speakers.json",
]


rule link_speakers:
    input:
        tracking="results/{project}/{video}/tracking.json",
        diarization="results/{project}/{video}/diarization.json",
        video="results/{project}/{video}/video.mp4",
        env=env_ready("finalize"),
    output:
        faces="results/{project}/{video}/faces.json",
        speakers="results/{project}/{video}/speakers.json",
    log:
        "logs/link_speakers/{project}/{video}.log",
    benchmark:
        "results/benchmarks/link_speakers/{project}/{video}.tsv"
    conda:
        env_file("finalize")
    threads: 1
    resources:
        mem_mb=1024,  # streams tracking.json; the audio (16 kHz float32) is held: 38 MB at 600 s
        runtime=30,
    params:
        **step_job(config["link_speakers"]),
        python=env_python("finalize"),
        step=step_command("link_speakers"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
