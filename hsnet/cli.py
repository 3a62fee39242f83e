"""The ``hsnet`` command: one subcommand per module in ``hsnet.commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Errors a user can fix print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import NoReturn

COMMANDS = ("predict", "label", "convert", "push", "weights", "evaluate", "train")


class OneLineParser(argparse.ArgumentParser):
    """argparse with hsnet's error format: one line naming the command, no usage block, exit status 2."""

    def error(self, message: str) -> NoReturn:
        from .errors import one_line

        self.exit(2, f"{self.prog}: error: {one_line(message, 300)}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = OneLineParser(prog="hsnet", description="Few-shot segmentation with HSNet (ICCV 2021).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"hsnet.commands.{name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run, parser=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hsnet`` console script."""
    from .errors import HSNetError, describe

    try:
        args, unknown = build_parser().parse_known_args(argv)
        if unknown:  # reported by the command's parser, so that the line names the command
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:  # argparse's refusals (status 2) and --help (status 0)
        return int(exit_.code or 0)
    except KeyboardInterrupt:  # Ctrl-C while the commands load (torch is imported here)
        print("hsnet: interrupted", file=sys.stderr)
        return 130
    try:
        with warnings.catch_warnings():
            # Pillow's warnings about odd files are answered by hsnet's own one-line errors.
            warnings.filterwarnings("ignore", module="PIL")
            return int(args.run(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except HSNetError as exc:
        print(f"hsnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused a write the checks could not foresee (disk full, ...)
        print(f"hsnet {args.command}: error: {describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hsnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
