"""What identifies the code and options a cell was measured with, so ``--resume`` can tell.

Caveat first: the fingerprint covers the *source files* that define the network and the
attention module (the whole file, so an edited helper function in it counts) and their options,
not what those files import: editing a module that the user's file imports does not change it.
attnprof's own counting code is not covered either; a new attnprof version is recorded in the
results' provenance instead.

A fingerprint is the first 16 hex digits of a SHA-256 over a JSON object of: the network's
source (an attnprof backbone: its builder's file and the attention-slot file; a user's network:
its factory's file), its options and ``insert_after``, the attention factory's file, the
variant's options, the head and the input shape.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

from torch import nn

from attnprof.attention.registry import get_attention_spec
from attnprof.networks import Network


def _source(obj: Any) -> str:
    """The text of the file that defines ``obj`` (its qualified name where there is none)."""
    if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj)):
        obj = type(obj)
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        path = None
    if path and Path(path).is_file():
        return Path(path).read_text(encoding="utf-8", errors="replace")
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def _network_part(network: str | Network) -> dict[str, Any]:
    if isinstance(network, Network):
        return {
            "source": _source(
                network.target if isinstance(network.target, nn.Module) else network.factory()
            ),
            "options": network.options,
            "insert_after": network.insert_after,
        }
    from attnprof.backbones.common import AttentionBuilder
    from attnprof.backbones.registry import BACKBONES, backbone_class

    info = BACKBONES[network.lower()]
    return {"name": info.name, "source": _source(backbone_class(info)),
            "slots": _source(AttentionBuilder)}


def fingerprint(
    network: str | Network,
    attention: str,
    options: dict[str, Any],
    head: str,
    input_shape: tuple[int, ...],
) -> str:
    """The fingerprint of one cell's network, attention variant, options, head and input."""
    spec = get_attention_spec(attention)
    content = {
        "network": _network_part(network),
        "attention": {"name": spec.name, "source": _source(spec.factory)},
        "options": options,
        "head": head,
        "input": list(input_shape),
    }
    text = json.dumps(content, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def variant_source_fingerprint(attention: str) -> str:
    """The first 16 hex digits of a SHA-256 over the source file of ``attention``'s factory: it
    changes when that file is edited, whichever cell it is measured in."""
    text = _source(get_attention_spec(attention).factory)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
