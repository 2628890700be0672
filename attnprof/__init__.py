"""attnprof: what does this attention module really cost?

Builds ResNets, ResNeXt and MobileNetV2 (or the user's own network) with lightweight attention
modules (SE, SGE, SA, CBAM, ECA, GC, BAM, SK, or the user's own), counts their parameters and
FLOPs under named conventions, times them, and writes comparison tables.

    >>> import attnprof
    >>> model = attnprof.build_model("resnet50", "se", device="meta")
    >>> record = attnprof.profile("resnet50", "se", input=224, conventions=["paper"])
    >>> count = attnprof.count(model, (1, 3, 224, 224), "paper")   # any nn.Module
"""

from attnprof.attention import build_attention, register_attention
from attnprof.backbones import build_model
from attnprof.counting import Convention, count, register_convention
from attnprof.errors import AttnprofError
from attnprof.networks import AttentionSlot, Network
from attnprof.profiling import LatencyRequest, profile

__version__ = "0.1.0"

__all__ = [
    "AttentionSlot",
    "AttnprofError",
    "Convention",
    "LatencyRequest",
    "Network",
    "__version__",
    "build_attention",
    "build_model",
    "count",
    "profile",
    "register_attention",
    "register_convention",
]
