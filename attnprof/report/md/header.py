"""The top of report.md: the suite's name and description; and the provenance section."""

from __future__ import annotations

from attnprof.report.model import Report


def title(report: Report) -> str:
    suite = report.suite
    lines = [f"# attnprof report: {suite.name}"]
    if suite.description:
        lines += ["", suite.description]
    return "\n".join(lines)


def provenance_section(report: Report) -> str:
    """Where and with what the results were measured (each machine's, in a merged file)."""
    suite, document = report.suite, report.document
    recorded = document.provenance.to_dict() if document.provenance else {}
    prov = {key: value for key, value in recorded.items() if value is not None}
    lines = ["## Provenance", ""]
    versions = " · ".join(
        f"{label} {prov.get(label.lower()) or 'unknown'}"
        for label in ("attnprof", "torch", "fvcore", "thop", "Python")
    )
    lines.append(f"- **Versions**: {versions}")
    lines.append(f"- **Platform**: {prov.get('platform') or 'unknown'}")
    cpu = str(prov.get("cpu") or "unknown")
    if prov.get("cpu_count"):
        cpu += f" ({prov['cpu_count']} logical CPUs)"
    lines.append(f"- **CPU**: {cpu}; torch threads: {prov.get('threads') or 'unknown'}")
    lines.append(f"- **GPU**: {_gpu(prov.get('gpu'))}")
    lines.append(f"- **Commit**: {prov.get('git_commit') or 'unknown'}")
    lines.append(f"- **Measured (UTC)**: {prov.get('utc') or 'unknown'}")
    if suite.source:
        lines.append(f"- **Suite file**: {suite.source}")
    if not prov:
        lines.append("- The results file records no provenance: where it was measured is unknown.")
    if document.machines:
        lines.append(
            f"- **Machines**: merged from {len(document.machines)} machines; each timing's "
            "columns name the machine they were measured on (the lines above are machine "
            f"{document.machines[0].label}'s):"
        )
        for run in document.machines:
            prov = run.provenance
            lines.append(
                f"  - **{run.label}**: {run.describe()}; commit {prov.git_commit or 'unknown'}; "
                f"measured (UTC) {prov.utc or 'unknown'}; from {', '.join(run.sources)}"
            )
    earlier = document.resumed_from
    if earlier is not None:
        lines.append(
            f"- **Resumed**: part of these results come from an earlier run (UTC "
            f"{earlier.utc or 'unknown'}, commit {earlier.git_commit or 'unknown'}, "
            f"CPU {earlier.cpu or 'unknown'})"
        )
    return "\n".join(lines)


def _gpu(gpu) -> str:
    if not gpu:
        return "none"
    parts = [str(gpu.get("name") or "unknown")]
    if isinstance(gpu.get("memory_bytes"), (int, float)) and gpu["memory_bytes"] > 0:
        parts.append(f"{gpu['memory_bytes'] / 2**30:.1f} GiB")
    for label, key in (("driver", "driver"), ("CUDA", "cuda"), ("cuDNN", "cudnn")):
        if gpu.get(key):
            parts.append(f"{label} {gpu[key]}")
    return ", ".join(parts)
