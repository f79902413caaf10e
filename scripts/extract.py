"""Step 1 entry point: extract one archive (or register loose videos) into a project folder."""

import argparse

from steps.extract import Limits, collect_loose, extract_archive, extract_download
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", required=True)
    parser.add_argument("--out", required=True, help="checkpoint folder to create")
    parser.add_argument("--log")
    parser.add_argument("--archive", help="archive to extract")
    parser.add_argument("--loose", nargs="*", default=[], help="loose videos to register instead")
    parser.add_argument("--download-status", help="status.json of a download job, instead")
    parser.add_argument("--earlier-status", nargs="*", default=[], help="status.json of the links listed before it")
    parser.add_argument("--max-total-bytes", type=int, required=True)
    parser.add_argument("--max-members", type=int, required=True)
    parser.add_argument("--max-ratio", type=float, required=True)
    parser.add_argument("--extensions", nargs="+", required=True)
    args = parser.parse_args(argv)
    setup_logging(args.log)
    limits = Limits(args.max_total_bytes, args.max_members, args.max_ratio)
    if args.archive:
        extract_archive(args.archive, args.out, args.project, limits, args.extensions)
    elif args.download_status:
        extract_download(args.download_status, args.out, args.project, limits, args.extensions,
                         args.earlier_status)
    else:
        collect_loose(args.loose, args.out, args.project)


if __name__ == "__main__":
    run_main(main)
