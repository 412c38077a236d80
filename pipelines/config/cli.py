"""``python -m pipelines.config``: validate a parameter file, or compose one from a config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.config.compose import compose_params
from pipelines.config.errors import ConfigError
from pipelines.config.loading import PARAMS_FILE, load_params


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.config [params.yaml]``: validate, print one line, exit 0 or 2.
    ``python -m pipelines.config --compose configs/celeba.yaml``: params.yaml = defaults + that file."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.config", description=main.__doc__)
    parser.add_argument("params", nargs="?", default=PARAMS_FILE)
    parser.add_argument("--compose", metavar="CONFIG", help="write PARAMS as the defaults with CONFIG's keys set")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    path = Path(args.params)
    try:
        if args.compose:
            compose_params(args.compose, path)
            print(f"{path}: the defaults with {args.compose} applied")
        load_params(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{path}: parameters are valid")
    return 0
