"""The one validator of results documents: the JSON Schema, then what a schema cannot say.

Caveat first: validation runs on the *migrated* document (see :mod:`.migrate`), so its messages
name the current field names even for an old file. The first problem found becomes one
:class:`~attnprof.errors.AttnprofError` naming the file, the place (``cells[3]
('resnet50|se|fc@224x224').latency[0].median_ms``), what was found and what was expected.

The schema (``results.schema.json`` beside this module, referenced from the README) says what
each record holds; :func:`_check_consistency` adds the rules across records: one cell per id and
per backbone/setting/variant, and one unit per convention across all cells.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from attnprof.errors import AttnprofError, choices

_TYPE_NAMES = {
    "object": "a record",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "null": "nothing (null)",
    "boolean": "true or false",
}


@functools.cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema of the current results version, as shipped with the package."""
    text = resources.files("attnprof.results").joinpath("results.schema.json").read_text("utf-8")
    return json.loads(text)


@functools.cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json_schema())


def check(data: Any, source: str) -> None:
    """Raise :class:`AttnprofError` at the first problem of the (migrated) document ``data``."""
    problem = first_problem(_validator(), data)
    if problem is not None:
        raise _corrupt(source, *problem)
    _check_consistency(data, source)


def first_problem(validator, data: Any) -> tuple[str, str] | None:
    """``(where, what)`` of the first error a jsonschema ``validator`` finds in ``data``."""
    from jsonschema.exceptions import best_match

    errors = list(validator.iter_errors(data))
    # A record's own shape first; the rules that depend on its status ("an ok cell has a
    # profile") only once that shape is right.
    unconditional = [e for e in errors if not {"then", "else"} & set(e.schema_path)]
    error = best_match(unconditional or errors)
    if error is None:
        return None
    return _where(data, list(error.absolute_path)), _problem(error)


def _corrupt(source: str, where: str, problem: str) -> AttnprofError:
    return AttnprofError(
        f"results file {source!r} is corrupt: {where}: {problem}; "
        "re-run the suite or restore the file"
    )


def _where(data: Any, path: list) -> str:
    """``cells[3] ('resnet50|se|fc@224x224').profile.params`` for a JSON path."""
    if not path:
        return "top level"
    text, node = "", data
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else ("." if text else "") + str(step)
        node = node[step] if isinstance(node, (dict, list)) else None
        name = node.get("id", node.get("name")) if isinstance(node, dict) else None
        if isinstance(step, int) and isinstance(name, str):
            text += f" ({name!r})"
    return text


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _problem(error) -> str:
    """The schema error as 'expected ..., found ...'."""
    kind, expected = error.validator, error.validator_value
    if kind == "type":
        names = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"expected {wanted}, found {_shown(error.instance)}"
    if kind == "required":
        missing = [key for key in expected if key not in error.instance]
        return f"lacks {choices(repr(key) for key in missing)}"
    if kind == "const":
        return f"found {error.instance!r}, expected {expected!r}"
    if kind == "enum":
        return f"found {error.instance!r}, expected one of {choices(map(repr, expected))}"
    if kind == "minimum":
        return f"found {error.instance!r}, expected at least {expected}"
    if kind == "exclusiveMinimum":
        return f"found {error.instance!r}, expected more than {expected}"
    return error.message


def _check_consistency(data: dict, source: str) -> None:
    labels: set[str] = set()
    for index, machine in enumerate(data.get("machines") or ()):
        if machine["label"] in labels:
            raise _corrupt(source, f"machines[{index}]", f"a second machine {machine['label']!r}")
        labels.add(machine["label"])
    ids: set[str] = set()
    keys: dict[tuple[str, str, str], str] = {}
    units: dict[str, tuple[str, str]] = {}
    for index, cell in enumerate(data["cells"]):
        where = f"cells[{index}] ({cell['id']!r})"
        if cell["id"] in ids:
            raise _corrupt(source, where, "a second cell with this id")
        ids.add(cell["id"])
        key = (cell["backbone"], cell["setting"], cell["variant"])
        if key in keys:
            raise _corrupt(
                source, where, f"a second cell for {'/'.join(key)} (the first is {keys[key]!r})"
            )
        keys[key] = cell["id"]
        for name, count in ((cell.get("profile") or {}).get("counts") or {}).items():
            at = f"{where}.profile.counts.{name}.unit"
            first = units.setdefault(name, (count["unit"], at))
            if first[0] != count["unit"]:
                raise _corrupt(source, at, f"{count['unit']!r} here but {first[0]!r} in {first[1]}")
        timed: set[tuple[str, int, Any, Any, Any]] = set()
        for j, entry in enumerate(cell.get("latency") or ()):
            condition = (entry.get("machine"), entry["device"], entry["batch"],
                         entry.get("threads"), entry.get("pass_name"), entry.get("mode"))
            if condition in timed:
                raise _corrupt(
                    source, f"{where}.latency[{j}]",
                    "a second timing for this machine, device, batch, pass and mode",
                )
            timed.add(condition)
            if entry.get("machine") is not None and entry["machine"] not in labels:
                raise _corrupt(
                    source, f"{where}.latency[{j}].machine",
                    f"names machine {entry['machine']!r}, which the file's machines do not list "
                    f"({choices(map(repr, sorted(labels))) if labels else 'none'})",
                )
