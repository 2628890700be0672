"""The project's own backbones (torchvision's layouts, no torchvision needed): ResNet-18 to 152,
ResNeXt-50 32x4d and MobileNetV2, all built by :func:`build_model`; :data:`BACKBONES` names them."""

from attnprof.backbones.common import HEADS
from attnprof.backbones.mobilenet import MobileNetV2
from attnprof.backbones.registry import BACKBONES, BackboneInfo, build_model
from attnprof.backbones.resnet import RESNET_CONFIGS, ResNet

__all__ = [
    "BACKBONES",
    "HEADS",
    "RESNET_CONFIGS",
    "BackboneInfo",
    "MobileNetV2",
    "ResNet",
    "build_model",
]
