# Step 7: validate every JSON output, then archive/<sha256 of video.mp4>/ with provenance.
# The archive folder's name is known only after hashing, so the rule's tracked output is a receipt. Which inputs are
# validated (against which schema) and archived (under which name): VALIDATED_INPUTS, ARCHIVED_INPUTS in
# scripts/steps/finalize.py; the provenance in the job's settings: rules/provenance.smk.
VIDEO_OUTPUTS.append("results/{project}/{video}/archive.json")


rule finalize:
    input:
        unpack(optional_inputs),
        source="results/{project}/{video}/source.json",
        video="results/{project}/{video}/video.mp4",
        info="results/{project}/{video}/video.json",
        scenes="results/{project}/{video}/scenes.json",
        scenes_csv="results/{project}/{video}/scenes.csv",
        diarization="results/{project}/{video}/diarization.json",
        rttm="results/{project}/{video}/diarization.rttm",
        tracking="results/{project}/{video}/faces.json",
        speakers="results/{project}/{video}/speakers.json",
        reduced_tracking="results/{project}/{video}/{video}_tracking.json",
        reduced_audio="results/{project}/{video}/{video}_audio.json",
        env=env_ready("finalize"),
    output:
        receipt="results/{project}/{video}/archive.json",
    log:
        "logs/finalize/{project}/{video}.log",
    benchmark:
        "results/benchmarks/finalize/{project}/{video}.tsv"
    conda:
        env_file("finalize")
    threads: 1
    resources:
        mem_mb=512,  # validates faces.json frame by frame (33 MiB at 600 s)
        runtime=30,
    params:
        **step_job(FINALIZE_SETTINGS),
        python=env_python("finalize"),
        step=step_command("finalize"),
    shell:
        "{params.python} {params.step} {params.job} --threads {threads} --log {log}"
