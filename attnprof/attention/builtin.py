"""Registers the built-in zoo. Imported lazily by the registry on first use.

Order matters only for listings: ``none`` first, then the block modules, BAM, SK.
"""

from torch import nn

from attnprof.attention.bam import BAM
from attnprof.attention.cbam import CBAM
from attnprof.attention.eca import ECA
from attnprof.attention.gc import GC
from attnprof.attention.registry import register_attention
from attnprof.attention.sa import SA
from attnprof.attention.se import SE
from attnprof.attention.sge import SGE
from attnprof.attention.sk import SKConv

register_attention("none", lambda channels: nn.Identity(), placement="none", paper="plain backbone")
register_attention("se", SE, placement="block", paper="Hu et al., arXiv:1709.01507")
register_attention("sge", SGE, placement="block", paper="Li et al., arXiv:1905.09646")
register_attention("sa", SA, placement="block", paper="Zhang & Yang, arXiv:2102.00240")
register_attention("cbam", CBAM, placement="block", paper="Woo et al., arXiv:1807.06521")
register_attention(
    "eca", ECA, placement="block", paper="Wang et al., arXiv:1910.03151", stage_aware=True
)
register_attention("gc", GC, placement="block", paper="Cao et al., arXiv:1904.11492")
register_attention("bam", BAM, placement="stage", paper="Park et al., arXiv:1807.06514")
register_attention(
    "sk",
    SKConv,
    placement="conv",
    paper="Li et al., arXiv:1903.06586 (variant of the SGE paper, arXiv:1905.09646)",
)
