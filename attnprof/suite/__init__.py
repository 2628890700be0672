"""Suites: a TOML file in, a results folder out (:mod:`.config` reads, :mod:`.runner` runs).

Nothing is re-exported: import from the module that does the job.
"""
