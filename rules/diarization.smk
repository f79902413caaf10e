# Step 4: speaker diarization of each normalised video -> diarization.json + diarization.rttm.
# Two backends, each in its own env, both writing the same files; audio.backend picks the rule
# (the pyannote env, ~6 GB, is only built when selected).
VIDEO_OUTPUTS += [
    "results/{project}/{video}/diarization.json",
    "results/{project}/{video}/diarization.rttm",
]

AUDIO = config["audio"]

if AUDIO["backend"] == "pyannote":

    ruleorder: diarize_pyannote > diarize_vad_embed

else:

    ruleorder: diarize_vad_embed > diarize_pyannote


rule diarize_vad_embed:
    input:
        video="results/{project}/{video}/video.mp4",
        env=env_ready("diarization"),
    output:
        json="results/{project}/{video}/diarization.json",
        rttm="results/{project}/{video}/diarization.rttm",
    log:
        "logs/diarize_vad_embed/{project}/{video}.log",
    benchmark:
        "results/benchmarks/diarize_vad_embed/{project}/{video}.tsv"
    conda:
        "../envs/diarization.yaml"
    threads: AUDIO["threads"]
    resources:
        mem_mb=1536,  # measured peak RSS: 430 MB (demo), 769 MB (60 min of speech)
        runtime=120,
    params:
        python=env_python("diarization"),
        script=script_path("diarize.py"),
        speakers=f"--num-speakers {AUDIO['num_speakers']} --min-speakers {AUDIO['min_speakers']}"
        f" --max-speakers {AUDIO['max_speakers']}",
        vad=f"--vad-threshold {AUDIO['vad_threshold']} --min-speech {AUDIO['min_speech']}"
        f" --min-silence {AUDIO['min_silence']} --embed-rate {AUDIO['embed_rate']}"
        f" --merge-similarity {AUDIO['merge_similarity']}",
    shell:
        "{params.python} {params.script} --backend vad_embed --input {input.video} --json {output.json}"
        " --rttm {output.rttm} --threads {threads} {params.speakers} {params.vad} --log {log}"


rule diarize_pyannote:
    input:
        video="results/{project}/{video}/video.mp4",
        env=env_ready("pyannote"),
    output:
        json="results/{project}/{video}/diarization.json",
        rttm="results/{project}/{video}/diarization.rttm",
    log:
        "logs/diarize_pyannote/{project}/{video}.log",
    benchmark:
        "results/benchmarks/diarize_pyannote/{project}/{video}.tsv"
    conda:
        "../envs/pyannote.yaml"
    threads: AUDIO["threads"]
    resources:
        mem_mb=8192,
        runtime=240,
        gpu=AUDIO["gpu"],
    params:
        python=env_python("pyannote"),
        script=script_path("diarize.py"),
        speakers=f"--num-speakers {AUDIO['num_speakers']} --min-speakers {AUDIO['min_speakers']}"
        f" --max-speakers {AUDIO['max_speakers']}",
        pipeline=shlex.quote(AUDIO["pyannote"]["pipeline"]),
        token_env=AUDIO["pyannote"]["token_env"],
    shell:
        "{params.python} {params.script} --backend pyannote --input {input.video} --json {output.json}"
        " --rttm {output.rttm} --threads {threads} --gpus {resources.gpu} {params.speakers}"
        " --pipeline {params.pipeline} --token-env {params.token_env} --log {log}"
