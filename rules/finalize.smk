# Step 7: validate every JSON output, then archive/<sha256 of video.mp4>/ with provenance.
# The archive folder's name is known only after hashing, so the rule's tracked output is a receipt.
VIDEO_OUTPUTS.append("results/{project}/{video}/archive.json")


rule finalize:
    input:
        unpack(expressions_inputs),
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
        "results/{project}/{video}/archive.json",
    log:
        "logs/finalize/{project}/{video}.log",
    benchmark:
        "results/benchmarks/finalize/{project}/{video}.tsv"
    conda:
        "../envs/finalize.yaml"
    threads: 1
    resources:
        mem_mb=512,  # validates faces.json frame by frame (33 MiB at 600 s)
        runtime=30,
    params:
        python=env_python("finalize"),
        script=script_path("finalize.py"),
        config=shlex.quote(json.dumps(STEP_CONFIG, sort_keys=True)),
        env_files=" ".join(_from_workdir(ENVS_DIR / f"{env}.yaml") for env in STEP_ENVS),
        snakemake_version=snakemake_version,
        archive_root=config["finalize"]["archive_dir"],
        schemas=_from_workdir(SCHEMAS_DIR),
        expressions=expressions_finalize_args,
    shell:
        "{params.python} {params.script} --video {wildcards.video} --project {wildcards.project}"
        " --source {input.source} --converted {input.video} --schemas {params.schemas}"
        " --validate source={input.source} video={input.info} scenes={input.scenes}"
        " diarization={input.diarization} tracking={input.tracking} speakers={input.speakers}"
        " reduced_tracking={input.reduced_tracking} reduced_audio={input.reduced_audio}"
        " --archive-as {wildcards.video}_tracking.json={input.reduced_tracking}"
        " {wildcards.video}_audio.json={input.reduced_audio} {wildcards.video}_scenes.csv={input.scenes_csv}"
        " {wildcards.video}_diarization.rttm={input.rttm}"
        " --config-json {params.config} --env-files {params.env_files}"
        " --snakemake-version {params.snakemake_version} --archive-root {params.archive_root}"
        " --receipt {output}{params.expressions} --log {log}"
