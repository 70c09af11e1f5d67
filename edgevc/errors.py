"""Errors a user can act on: what was wrong, what was expected, what to run.

Every error raised on purpose by edgevc derives from :class:`EdgevcError`; the
CLI prints ``str(err)`` (one clear message) and exits non-zero instead of a
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgevcError(Exception):
    """Base class: ``message`` says what was wrong, ``hint`` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")


class SpecError(EdgevcError, ValueError):
    """A spec or metadata field is unknown, of the wrong type, or out of range."""

    def __init__(self, field: str, problem: str, allowed: str | None = None) -> None:
        self.field = field
        msg = f"invalid field '{field}': {problem}"
        if allowed:
            msg += f" (allowed: {allowed})"
        super().__init__(msg)


class UnknownNameError(EdgevcError, KeyError):
    """An unknown registry name; the message lists a 'did you mean' and the valid names."""

    exit_code = 2

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        valid = sorted(valid)
        self.name = name
        self.valid = valid
        msg = f"unknown {kind} '{name}'"
        close = did_you_mean(name, valid)
        if close:
            msg += f"; did you mean '{close}'?"
        super().__init__(msg, hint=f"valid {kind}s: {', '.join(valid)}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return Exception.__str__(self)


class VideoError(EdgevcError):
    """A video cannot be opened or decoded."""


class AssetError(EdgevcError):
    """A cached download failed, or its checksum does not match."""


class MissingDependencyError(EdgevcError):
    """An optional framework is not installed; the hint gives the pip command."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{module}', which is not installed",
            hint=f"pip install 'edgevc[{extra}]'",
        )


def did_you_mean(name: str, valid: Iterable[str]) -> str | None:
    """The closest valid name to ``name``, or None when nothing is close."""
    hits = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return hits[0] if hits else None
