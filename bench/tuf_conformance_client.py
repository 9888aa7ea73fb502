"""The tuf-conformance client-under-test CLI (its CLIENT-CLI.md), on dasct's TUF client.

Every command goes through `dasct.agent.client.refreshed`, the same Updater set-up, fetcher
and error translation that `client.check` and `client.download` use; downloads go through a
temporary file and a rename as `client.download` does. Run by hand (docs/agent.md,
"Conformance"); the suite is not on PyPI and not in CI:

    pytest tuf_conformance --entrypoint "python bench/tuf_conformance_client.py"
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from urllib import parse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dasct.agent import AgentError
from dasct.agent.client import Source, fetch_target, refreshed


def source(args: argparse.Namespace) -> Source:
    return Source(env="conformance", system="conformance", metadata_url=args.metadata_url,
                  targets_url=args.target_base_url or args.metadata_url,
                  metadata_dir=Path(args.metadata_dir), max_release_bytes=1 << 40)


def download(args: argparse.Namespace) -> None:
    dest = Path(args.target_dir)
    with refreshed(source(args), target_dir=dest) as updater:
        for name in args.target_name:
            info = updater.get_targetinfo(name)
            if info is None:
                raise AgentError(f"{name}: not a target of the repository")
            dest.mkdir(parents=True, exist_ok=True)
            fetch_target(updater, info, dest / parse.quote(info.path, ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata-url")
    parser.add_argument("--metadata-dir", required=True)
    parser.add_argument("--target-name", action="append", default=[])
    parser.add_argument("--target-dir")
    parser.add_argument("--target-base-url")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init").add_argument("trusted_root")
    sub.add_parser("refresh")
    sub.add_parser("download")
    args = parser.parse_args()
    try:
        if args.command == "init":
            Path(args.metadata_dir).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(args.trusted_root, Path(args.metadata_dir) / "root.json")
        elif args.command == "refresh":
            with refreshed(source(args)):
                pass
        else:
            download(args)
    except AgentError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
