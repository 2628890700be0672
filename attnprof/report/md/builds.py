"""What each mode built once per run: compile or export time, and the output check."""

from __future__ import annotations

from attnprof.report import columns as c
from attnprof.report.md.table import table, title
from attnprof.report.model import Report
from attnprof.report.runtimes import mode_description


def builds_section(report: Report) -> str:
    rows = report.builds
    if not rows:
        return ""
    out = [
        "## Builds",
        "",
        "What each mode built once per run, before any timing process and timed apart from "
        "every timing: the compilation, export or package, and how far the built model's "
        "outputs are from eager's on one random input (it matches when every element is "
        "within atol + rtol × |eager|; a build that does not match is never timed).",
    ]
    notes = []
    if any(r.first_call for r in rows):
        notes.append("- build (s) marked *first call*: a file from before builds were recorded; "
                   "it is the median over processes of the compiled model's first call "
                   "(compilation and one run; a process that found the compiler's cache warm "
                   "compiles faster).")
    versions = dict.fromkeys((r.key.mode, r.runtime_version) for r in rows if r.runtime_version)
    for mode, version in versions:
        notes.append(f"- **{mode}** {version}: "
                   f"{mode_description(mode) or 'a mode this attnprof does not describe'}.")
    out += ["", *notes] if notes else []
    columns = [c.VARIANT, c.MODE, c.PASS, c.BUILD_S, c.MAX_ABS_ERR, c.MAX_REL_ERR,
               c.TOLERANCE, c.CHECK]
    for backbone, setting in dict.fromkeys((r.backbone, r.setting) for r in rows):
        body = []
        for r in rows:
            if (r.backbone, r.setting) != (backbone, setting):
                continue
            check = r.check
            seconds = c.BUILD_S.text(r.build_s) + (" *first call*" if r.first_call else "")
            body.append([
                r.variant, r.key.mode, r.key.pass_name, seconds,
                check.max_abs_err if check else None, check.max_rel_err if check else None,
                f"{check.atol:g}, {check.rtol:g}" if check else None,
                _verdict(check, r.error),
            ])
        out += ["", title(backbone, setting), "", table(columns, body)]
    return "\n".join(out)


def _verdict(check, error: str | None) -> str:
    if check is None:
        return "not checked" + (f"; timing failed: {error}" if error else "")
    said = "yes" if check.ok else "no"
    return said + (f"; timing failed: {error}" if error and check.ok else "")
