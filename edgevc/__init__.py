"""edgevc: video classification from PyTorch to the edge, verified at every step."""

__version__ = "0.1.0"
