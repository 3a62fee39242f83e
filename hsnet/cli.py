"""The ``hsnet`` command: one subcommand per module in ``hsnet.commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Errors a user can fix print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

COMMANDS = ("predict", "convert", "push", "weights", "evaluate", "train")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="hsnet", description="Few-shot segmentation with HSNet (ICCV 2021).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"hsnet.commands.{name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hsnet`` console script."""
    from .errors import HSNetError

    args = build_parser().parse_args(argv)
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
    except KeyboardInterrupt:
        print(f"hsnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
