"""The ``recforge`` command: argparse with one module per subcommand.

Each module named in :data:`SUBCOMMANDS` exposes ``add_parser(subparsers)``, which adds its
parser and sets ``func`` (``func(args) -> int``) as a default. Adding a subcommand is one line
in that list.

Exit codes: 0 success, 1 bad data, a failed download or an unreadable / unwritable file (the
message goes to stderr, naming the file, line and field where known), 2 usage errors
(argparse's convention), 130 interrupted by SIGINT (Ctrl-C), 143 stopped by SIGTERM.

Global options (``-v``, ``-q``, ``--debug``, ``--threads N``) may come anywhere on the line,
before or after the subcommand; ``--data-dir`` given before the subcommand is passed to it.
Errors print one line (``recforge: error: ...``); ``--debug`` adds the traceback. A traceback
without ``--debug`` is a bug.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

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
                        help="more log output (-v info, -vv debug); global: may come anywhere")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars and only errors on stderr (global)")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error (global)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="threads of Numba kernels, torch and BLAS together (global; default: "
                             "all cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


#: Options that every subcommand accepts anywhere on the line: name -> takes a value.
GLOBAL_FLAGS = {"-v": False, "--verbose": False, "-q": False, "--quiet": False, "--debug": False,
                "--threads": True}


def hoist_global_options(argv: list[str], command_names=()) -> list[str]:
    """Move the global options (:data:`GLOBAL_FLAGS`, also ``-vv``) to the front, wherever they
    stand before a ``--``; a ``--data-dir`` given before the subcommand goes to the end (where
    the innermost subcommand parses it)."""
    front, rest, tail, data_dir = [], [], [], []
    seen_command = False
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            tail = argv[i:]
            break
        name = word.split("=", 1)[0]
        if name in GLOBAL_FLAGS or (len(word) > 2 and word.startswith("-v") and set(word[1:]) == {"v"}):
            front.append(word)
            if GLOBAL_FLAGS.get(name) and "=" not in word and i + 1 < len(argv):
                front.append(argv[i + 1])
                i += 1
        elif not seen_command and name == "--data-dir":
            data_dir.append(word)
            if "=" not in word and i + 1 < len(argv):
                data_dir.append(argv[i + 1])
                i += 1
        else:
            seen_command = seen_command or word in command_names
            rest.append(word)
        i += 1
    return front + rest + (data_dir if seen_command else []) + tail + ([] if seen_command else data_dir)


def _interrupt_code(exc: BaseException) -> int | None:
    """130 / 143 when ``exc`` is, or was caused by, an interrupt (a Ctrl-C that landed inside a
    compiled kernel's Python callback comes back as a ``SystemError`` caused by it)."""
    from ..interrupt import Interrupted

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, Interrupted):
            return exc.exit_code
        if isinstance(exc, KeyboardInterrupt):
            return 130
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    from .. import interrupt

    previous = interrupt.install()
    printing = {}
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), printing)
    finally:
        interrupt.restore(previous)
        interrupt.reset()
        if printing:  # in-process callers (tests, notebooks) get NumPy's settings back
            sys.modules["numpy"].set_printoptions(**printing)


def _main(argv: list[str], printing: dict) -> int:
    from ..data.download import DownloadError
    from ..data.errors import DataError

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    argv = hoist_global_options(argv, set(sub.choices))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help / --version exit 0, usage errors exit 2
        return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
    import numpy as np

    printing.update(np.get_printoptions())
    np.set_printoptions(legacy="1.25")  # numbers in messages print as 99.0, not np.float64(99.0)
    level = logging.ERROR if args.quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    func = getattr(args, "func", None)
    if func is None:
        # a command group without its subcommand prints that group's help
        (getattr(args, "group_parser", None) or parser).print_help(sys.stderr)
        return EXIT_USAGE
    debug = bool(args.debug)
    try:
        if args.threads is not None:
            from ..threads import set_threads

            try:
                set_threads(args.threads)
            except ValueError as e:
                raise UsageError(f"--threads: {e}") from None
        return int(func(args) or EXIT_OK)
    except (DataError, DownloadError) as e:
        _report(f"recforge: error: {e}", debug)
        return EXIT_DATA_ERROR
    except UsageError as e:
        _report(f"recforge {args.command}: error: {e}", debug)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into `head`
        return EXIT_OK
    except OSError as e:  # unreadable input, unwritable output
        _report(f"recforge: error: {e}", debug)
        return EXIT_DATA_ERROR
    except BaseException as e:  # noqa: BLE001 - the one place that turns anything into an exit code
        code = _interrupt_code(e)
        if code is not None:
            print(f"recforge: {'interrupted' if code == 130 else 'stopped (SIGTERM)'}", file=sys.stderr)
            return code
        if isinstance(e, SystemExit):
            return int(e.code) if isinstance(e.code, int) else EXIT_USAGE
        _report(f"recforge {args.command}: internal error: {type(e).__name__}: {e}\n"
                "(this is a bug; run again with --debug for the traceback)", debug)
        return EXIT_DATA_ERROR


def _report(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)
    print(message, file=sys.stderr)


class UsageError(Exception):
    """Arguments that parse but do not make sense together (exit code 2)."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
