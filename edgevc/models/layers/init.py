"""The weight initialisation the zoo's families share (torchvision's and PyTorchVideo's, which agree).

Kaiming-normal fan-out convolutions (2D and 3D, gain sqrt(2)), zero conv biases, BatchNorm at the
identity, and a small normal linear head. One loop for every family, so they consume the random
stream in module order exactly as torchvision's ``VideoResNet``/``MobileNetV2`` and PyTorchVideo's
``init_net_weights`` do.
"""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, head_std: float = 0.01) -> None:
    """He-normal (fan_out) convs with zero bias, BN weight 1 / bias 0, linear N(0, head_std) with zero bias."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, head_std)
            nn.init.zeros_(m.bias)
