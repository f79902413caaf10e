# Identity (identity.enabled, on by default): one id per person across cuts and across a project's videos.
# Per video (rule identity): a face embedding per track from its best frames (dlib ResNet) and a voice embedding per
# diarization speaker (CAM++, the diarization's speaker model) -> identity.json. Per project (rule
# identity_persons): both clustered across all its videos and joined through speakers.json's links -> persons.json
# (waits for every video of the manifest; with transcribe on, its transcripts give each person's word count).
IDENTITY = config["identity"]
# The keys only the per-project clustering reads: changing them never reruns the per-video embeddings.
PERSONS_KEYS = (
    "face_distance",
    "voice_distance",
    "gallery",
    "gallery_face_distance",
    "gallery_voice_distance",
)
PERSONS_OUTPUTS = []
if IDENTITY["enabled"]:
    VIDEO_OUTPUTS.append("results/{project}/{video}/identity.json")
    PERSONS_OUTPUTS = expand("results/{project}/persons.json", project=sorted(PROJECTS))


rule identity:
    input:
        video="results/{project}/{video}/video.mp4",
        faces="results/{project}/{video}/faces.json",
        speakers="results/{project}/{video}/speakers.json",
        diarization="results/{project}/{video}/diarization.json",
        env=env_ready("identity"),
    output:
        identity="results/{project}/{video}/identity.json",
    log:
        "logs/identity/{project}/{video}.log",
    benchmark:
        "results/benchmarks/identity/{project}/{video}.tsv"
    conda:
        env_file("identity")
    threads: branch_threads(IDENTITY["threads"])
    resources:
        mem_mb=1536,  # measured peak RSS: 593 MiB for 605 s of 640x360 video, 30 tracks (benchmarks/README.md)
        runtime=60,
    params:
        **step_job({k: v for k, v in IDENTITY.items() if k not in PERSONS_KEYS}),
        python=env_python("identity"),
        step=step_command("identity"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"


rule identity_persons:
    input:
        identity=project_identity,
        transcripts=project_transcripts,
        env=env_ready("identity"),
    output:
        persons="results/{project}/persons.json",
    log:
        "logs/identity_persons/{project}.log",
    benchmark:
        "results/benchmarks/identity_persons/{project}.tsv"
    conda:
        env_file("identity")
    threads: IDENTITY["threads"]
    resources:
        mem_mb=1024,
        runtime=30,
    params:
        **step_job({k: IDENTITY[k] for k in PERSONS_KEYS}),
        python=env_python("identity"),
        step=step_command("identity.persons"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
