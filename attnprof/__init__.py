"""attnprof: what does this attention module really cost?

Builds ResNets with lightweight attention modules (SE, SGE, SA, CBAM, ECA, GC, BAM, SK), counts
their parameters and FLOPs under named conventions, times them, and writes comparison tables.

    >>> import attnprof
    >>> model = attnprof.build_model("resnet50", "se", device="meta")
    >>> record = attnprof.profile("resnet50", "se", input=224, conventions=["paper"])
"""

from attnprof.attention import build_attention, register_attention
from attnprof.backbones import build_model
from attnprof.errors import AttnprofError
from attnprof.profiling import LatencyRequest, profile

__version__ = "0.1.0"

__all__ = [
    "AttnprofError",
    "LatencyRequest",
    "__version__",
    "build_attention",
    "build_model",
    "profile",
    "register_attention",
]
