"""Runtime backends, one module each, named like the export target that writes their artifacts.

Each module defines ``BACKEND``: a class implementing
:class:`edgevc.runtime.backend.Backend`. It imports its framework lazily.
"""
