"""Export targets, one module each; each defines ``TARGET``, an :class:`edgevc.export.base.ExportTarget`.

The module's name is the target's name, the runtime backend's name, and
``ArtifactMeta.target``. Modules import their framework lazily.
"""
