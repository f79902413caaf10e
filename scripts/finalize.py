"""Step 7 entry point: validate one video's JSON outputs, then archive them under the video's SHA-256."""

import argparse
import json
import sys
from pathlib import Path

from vidflow.envfiles import read_env
from steps.finalize import finalize_video
from vidflow.logs import run_main, setup_logging


def pair(text):
    name, _, path = text.partition("=")
    return name, path


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", required=True, help="video slug")
    parser.add_argument("--project", required=True)
    parser.add_argument("--source", required=True, help="the video's record (source.json)")
    parser.add_argument("--converted", required=True, help="the 25 fps video (its SHA-256 keys the archive)")
    parser.add_argument("--validate", nargs="+", type=pair, default=[], action="extend",
                        help="SCHEMA=PATH: JSON outputs to validate (and archive when named in --archive-as)")
    parser.add_argument("--archive-as", nargs="*", type=pair, default=[], action="extend",
                        help="NAME=PATH files to archive")
    parser.add_argument("--schemas", required=True, help="folder of *.schema.json")
    parser.add_argument("--config-json", required=True, help="effective config of every step (JSON)")
    parser.add_argument("--env-files", nargs="+", required=True, help="envs/*.yaml of the steps that ran")
    parser.add_argument("--snakemake-version", required=True)
    parser.add_argument("--archive-root", required=True)
    parser.add_argument("--receipt", required=True)
    parser.add_argument("--log")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    setup_logging(args.log)
    archived = dict(args.archive_as)
    by_path = {path: name for name, path in archived.items()}
    json_inputs = {schema: (path, f"{schema}.schema.json", by_path.get(path)) for schema, path in args.validate}
    extra = {name: path for name, path in archived.items() if path not in {p for _, p in args.validate}}
    environments = {}
    for env_file in args.env_files:
        env = read_env(env_file)
        environments[env["name"]] = {"conda": env["conda"], "pip": env["pip"] + env["nodeps"]}
    finalize_video(video=args.video, project=args.project, source_path=args.source, converted=args.converted,
                   json_inputs=json_inputs, schema_dir=args.schemas, extra_files=extra,
                   config=json.loads(args.config_json), environments=environments,
                   snakemake_version=args.snakemake_version, archive_root=args.archive_root, receipt=args.receipt)


if __name__ == "__main__":
    run_main(main)
