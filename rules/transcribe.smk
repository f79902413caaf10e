# Who said what, word by word (transcribe.enabled, on by default) -> transcript.json|.vtt|.srt: Whisper (base from
# pinned wheels by default) on the diarized speech (rule recognise_speech); words get their diarization speaker
# and, through faces.json, the face track linked to it (rule transcribe). The report, the exports and persons.json
# read it.
TRANSCRIBE = config["transcribe"]
if TRANSCRIBE["enabled"]:
    VIDEO_OUTPUTS += [
        "results/{project}/{video}/transcript.json",
        "results/{project}/{video}/transcript.vtt",
        "results/{project}/{video}/transcript.srt",
    ]


rule recognise_speech:
    # The recogniser needs the audio and the diarization only, not the faces: it runs beside scenes and tracking
    # (one thread by default). Its words are an intermediate, deleted once the transcript is made.
    input:
        video="results/{project}/{video}/video.mp4",
        diarization="results/{project}/{video}/diarization.json",
        env=env_ready("transcribe"),
    output:
        words=temp("results/{project}/{video}/words.json"),
    log:
        "logs/recognise_speech/{project}/{video}.log",
    benchmark:
        "results/benchmarks/recognise_speech/{project}/{video}.tsv"
    conda:
        env_file("transcribe")
    threads: TRANSCRIBE["threads"]  # not branch_threads: the words depend on the count (config/schema.yaml)
    resources:
        # the audio (16 kHz int16 + float32: 0.2 GB per hour) + the model: base int8 peaks at ~0.5 GB on 10 min
        # (benchmarks/README.md), small int8 ~0.9 GB, large-v3-turbo ~1.9 GB
        mem_mb=lambda wildcards, attempt: 2048 * attempt,
        runtime=240,
        gpu=TRANSCRIBE["gpu"],
    params:
        **step_job(TRANSCRIBE),
        python=env_python("transcribe"),
        step=step_command("transcribe:run_speech"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --gpus {resources.gpu} --log {log}"


rule transcribe:
    input:
        words="results/{project}/{video}/words.json",
        diarization="results/{project}/{video}/diarization.json",
        faces="results/{project}/{video}/faces.json",
        speakers="results/{project}/{video}/speakers.json",
        env=env_ready("transcribe"),
    output:
        json="results/{project}/{video}/transcript.json",
        vtt="results/{project}/{video}/transcript.vtt",
        srt="results/{project}/{video}/transcript.srt",
    log:
        "logs/transcribe/{project}/{video}.log",
    benchmark:
        "results/benchmarks/transcribe/{project}/{video}.tsv"
    conda:
        env_file("transcribe")
    threads: 1
    resources:
        mem_mb=1024,  # streams faces.json; the words of 10 min of speech are ~1 MB
        runtime=30,
    params:
        **step_job(TRANSCRIBE),
        python=env_python("transcribe"),
        step=step_command("transcribe"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
