"""The device's own limits, measured in a few seconds, to put a roofline bound on a timing.

- :func:`probe_machine`: memory bandwidth (the best of many streaming copies far larger than
  the last-level cache, on several buffer pairs), peak FLOP/s (large GEMMs, a convolution)
  and the fixed cost of one tiny eager operator, for one device, dtype and thread count, as a
  :class:`MachineLimits` record (:func:`probe_bandwidth`: the bandwidth alone);
- :func:`roofline`: the least time ``F`` FLOPs and ``B`` bytes can take under those limits,
  which limit binds, and how close a measured time came (:class:`Roofline`);
- :func:`bytes_time_s`: the time extra bytes alone cost at the measured bandwidth;
- :func:`describe_machine`: the machine in detail (CPU model, ISA, caches; torch's build; the
  GPU), :func:`machine_differences` between two such descriptions, and :func:`suite_source`:
  the git repository and commit a suite file comes from.

Caveats (what the two figures mean, why the sizes) are in :mod:`attnprof.machine.probe`.
"""

from attnprof.machine.identity import describe_machine, machine_differences, suite_source
from attnprof.machine.probe import (
    MachineLimits,
    Roofline,
    bytes_time_s,
    last_level_cache_bytes,
    probe_bandwidth,
    probe_machine,
    roofline,
)

__all__ = [
    "MachineLimits",
    "Roofline",
    "bytes_time_s",
    "describe_machine",
    "last_level_cache_bytes",
    "machine_differences",
    "probe_bandwidth",
    "probe_machine",
    "roofline",
    "suite_source",
]
