# Step 5b: who speaks on screen. Mouth motion per face gated by speech, and each diarization speaker linked
# to the face tracks that speak during its turns -> faces.json (tracking.json + speaking/speaker) and speakers.json.
# A rule of its own, so changing audio or link settings does not rerun tracking.
VIDEO_OUTPUTS += [
    "results/{project}/{video}/faces.json",
    "results/{project}/{video}/speakers.json",
]

LINK = config["link"]


rule link_speakers:
    input:
        tracking="results/{project}/{video}/tracking.json",
        diarization="results/{project}/{video}/diarization.json",
        env=env_ready("finalize"),
    output:
        faces="results/{project}/{video}/faces.json",
        speakers="results/{project}/{video}/speakers.json",
    log:
        "logs/link_speakers/{project}/{video}.log",
    benchmark:
        "results/benchmarks/link_speakers/{project}/{video}.tsv"
    conda:
        "../envs/finalize.yaml"
    threads: 1
    resources:
        mem_mb=512,  # streams tracking.json: flat in the video's length (32 MiB at 600 s)
        runtime=30,
    params:
        python=env_python("finalize"),
        script=script_path("link_speakers.py"),
        settings=f"--window {LINK['window']} --lip-motion {LINK['lip_motion']} --jaw-motion {LINK['jaw_motion']}"
        f" --min-fraction {LINK['min_fraction']} --min-margin {LINK['min_margin']}"
        f" --min-turn-frames {LINK['min_turn_frames']}",
    shell:
        "{params.python} {params.script} --tracking {input.tracking} --diarization {input.diarization}"
        " --out-faces {output.faces} --out-speakers {output.speakers} {params.settings} --log {log}"
