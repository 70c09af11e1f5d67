"""``edgevc``: every subcommand is a module in ``edgevc.cli.commands`` with NAME, HELP, add_arguments, run.

Errors raised on purpose (:class:`~edgevc.errors.EdgevcError`) print as one
message with a hint and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence

from edgevc import __version__
from edgevc.cli.parser import Parser
from edgevc.errors import EdgevcError

# the order shown in --help; a module that is not there yet is skipped
COMMANDS = ("probe", "sample", "models", "flops", "export", "targets", "run", "bench",
            "data", "train", "compress", "demo")


def _load_commands() -> list:
    mods = []
    for name in COMMANDS:
        modname = f"edgevc.cli.commands.{name}"
        if importlib.util.find_spec(modname) is not None:
            mods.append(importlib.import_module(modname))
    return mods


def build_parser() -> Parser:
    parser = Parser(prog="edgevc", description="Video classification from PyTorch to the edge, verified.")
    parser.add_argument("--version", action="version", version=f"edgevc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # let the subcommand's parser name its own options in the "did you mean"
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except EdgevcError as err:
        print(f"edgevc {args.command}: error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"  hint: {err.hint}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
