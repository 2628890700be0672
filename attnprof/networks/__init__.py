"""The user's own networks: placeholders for attention (:class:`AttentionSlot`), networks named
by import path or given as objects (:class:`Network`), and how attention gets into them."""

from attnprof.networks.slot import AttentionSlot, attention_modules, attention_slots
from attnprof.networks.user import USER_HEAD, Network, build_network, route_options

__all__ = [
    "USER_HEAD",
    "AttentionSlot",
    "Network",
    "attention_modules",
    "attention_slots",
    "build_network",
    "route_options",
]
