"""Attention modules for CNNs and the registry that names them.

One file per module family, each citing its paper; :mod:`attnprof.attention.registry` maps
lower-case names to factories and records where each module sits in a ResNet.
"""

from attnprof.attention.registry import (
    AttentionSpec,
    attention_names,
    build_attention,
    get_attention_spec,
    register_attention,
    unregister_attention,
)

__all__ = [
    "AttentionSpec",
    "attention_names",
    "build_attention",
    "get_attention_spec",
    "register_attention",
    "unregister_attention",
]
