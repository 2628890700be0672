"""The project's own ResNet backbones (torchvision's layout, no torchvision needed)."""

from attnprof.backbones.resnet import BACKBONES, HEADS, ResNet, build_model

__all__ = ["BACKBONES", "HEADS", "ResNet", "build_model"]
