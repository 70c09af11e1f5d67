"""An argparse parser whose errors are one clear line with a "did you mean", and exit code 2."""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

from edgevc.errors import did_you_mean


class Parser(argparse.ArgumentParser):
    """argparse with suggestions for unknown subcommands and options."""

    def error(self, message: str) -> NoReturn:
        message = self._suggest(message)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n  hint: run '{self.prog} --help' for the options\n")

    def _option_strings(self) -> list[str]:
        return [s for a in self._actions for s in a.option_strings]

    def _suggest(self, message: str) -> str:
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'?([\w.\-]+)'?", m.group(2))
            hint = did_you_mean(m.group(1), choices)
            return message + (f"; did you mean '{hint}'?" if hint else "")
        m = re.search(r"unrecognized arguments: (.*)", message)
        if m:
            for arg in m.group(1).split():
                if arg.startswith("-"):
                    hint = did_you_mean(arg.split("=")[0], self._option_strings())
                    if hint:
                        return f"{message}; did you mean '{hint}'?"
        return message


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
