"""report.md's sections, one module each; :func:`attnprof.report.markdown.render` puts them in
order. Every section only formats what :mod:`attnprof.report.model` computed, with the headers
and formats of the column contract (:mod:`attnprof.report.columns`); none imports another
section or the assembler.
"""
