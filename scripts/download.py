"""Download entry point: fetch one link into its folder and record it in the shared history."""

import argparse

from steps.download import download_link
from vidflow.logs import run_main, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--sha256")
    parser.add_argument("--size", type=int)
    parser.add_argument("--out", required=True, help="folder to create for this link")
    parser.add_argument("--history-dir", required=True, help="folder of download_history.json (shared)")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    setup_logging(args.log)
    link = {"url": args.url, "sha256": args.sha256, "size": args.size}
    download_link(link, args.out, args.history_dir, timeout=args.timeout, retries=args.retries)


if __name__ == "__main__":
    run_main(main)
