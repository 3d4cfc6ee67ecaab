"""The ``recforge`` command: argparse with one module per subcommand.

Each module named in :data:`SUBCOMMANDS` exposes ``add_parser(subparsers)``, which adds its
parser and sets ``func`` (``func(args) -> int``) as a default. Adding a subcommand is one line
in that list.

Exit codes: 0 success, 1 bad data, a failed download or an unreadable / unwritable file (the
message goes to stderr, naming the file, line and field where known), 2 usage errors
(argparse's convention), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .._version import __version__

#: Modules providing subcommands, in the order ``--help`` lists them.
SUBCOMMANDS = [
    "recforge.cli.datasets",
    "recforge.cli.split",
    "recforge.cli.bakeoff",
    "recforge.cli.train",
    "recforge.cli.serve",
    "recforge.cli.models",
    "recforge.cli.spark",
]

EXIT_OK = 0
EXIT_DATA_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand of :data:`SUBCOMMANDS` attached."""
    parser = argparse.ArgumentParser(
        prog="recforge",
        description="Recommender systems toolkit: data sets, splits, models, evaluation.")
    parser.add_argument("--version", action="version", version=f"recforge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    from ..data.download import DownloadError
    from ..data.errors import DataError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help / --version exit 0, usage errors exit 2
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        # a command group without its subcommand prints that group's help
        (getattr(args, "group_parser", None) or parser).print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(func(args) or EXIT_OK)
    except (DataError, DownloadError) as e:
        print(f"recforge: error: {e}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except UsageError as e:
        print(f"recforge {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head`
        return EXIT_OK
    except OSError as e:  # unreadable input, unwritable output
        print(f"recforge: error: {e}", file=sys.stderr)
        return EXIT_DATA_ERROR
    except KeyboardInterrupt:
        print("recforge: interrupted", file=sys.stderr)
        return 130


class UsageError(Exception):
    """Arguments that parse but do not make sense together (exit code 2)."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
