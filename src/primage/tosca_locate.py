"""Point a tool's message about a TOSCA template at the field it is about.

tosca-parser says `"two" is not an integer.` or `Unknown input "fe_cpu".` and nothing of
where. The quoted words of a message are looked for in the template (values, keys, node
and input names); the best match gives the line and a description of the field, e.g.
`property 'num_cpus' of capability 'host' of node 'front'`, which leads the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .errors import Problem
from .tosca import Template

_QUOTED = re.compile(r'"([^"]+)"|\'([^\']+)\'')
_TYPE_SECTIONS = {
    "node_types": "node type",
    "capability_types": "capability type",
    "relationship_types": "relationship type",
    "data_types": "data type",
    "artifact_types": "artifact type",
    "interface_types": "interface type",
    "policy_types": "policy type",
    "group_types": "group type",
}


def _leaves(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) of every mapping entry and list item, depth first; keys are path ends."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*path, key), value
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield (*path, index), item
            yield from _leaves(item, (*path, index))


def _node_field(node: str, rest: list) -> tuple[str, str]:
    section = rest[0] if rest else None
    if section == "properties" and len(rest) >= 2:
        return f"property '{rest[1]}' of node '{node}'", str(rest[1])
    if section == "capabilities" and len(rest) >= 2:
        if len(rest) >= 4 and rest[2] == "properties":
            return f"property '{rest[3]}' of capability '{rest[1]}' of node '{node}'", str(rest[3])
        return f"capability '{rest[1]}' of node '{node}'", str(rest[1])
    if section == "requirements" and len(rest) >= 3:
        return f"requirement '{rest[2]}' of node '{node}'", str(rest[2])
    if section == "interfaces" and len(rest) >= 3:
        operation = f"{rest[1]}.{rest[2]}"
        if len(rest) >= 5 and rest[3] == "inputs":
            return f"input '{rest[4]}' of operation '{operation}' of node '{node}'", str(rest[4])
        return f"operation '{operation}' of node '{node}'", str(rest[2])
    if section == "artifacts" and len(rest) >= 2:
        return f"artifact '{rest[1]}' of node '{node}'", str(rest[1])
    if section is not None:
        return f"field '{section}' of node '{node}'", str(section)
    return f"node '{node}'", node


def describe(path: tuple) -> tuple[str, str]:
    """(what a path of the template is, in words; the field it names)."""
    parts = list(path)
    if parts[:2] == ["topology_template", "node_templates"] and len(parts) >= 3:
        return _node_field(str(parts[2]), parts[3:])
    if parts[:1] == ["topology_template"] and len(parts) >= 3:
        section = {"inputs": "input", "outputs": "output", "groups": "group"}.get(str(parts[1]))
        if section:
            return f"{section} '{parts[2]}'", str(parts[2])
        if parts[1] == "policies" and len(parts) >= 4:
            return f"policy '{parts[3]}'", str(parts[3])
    if parts and parts[0] in _TYPE_SECTIONS and len(parts) >= 2:
        where = f"{_TYPE_SECTIONS[parts[0]]} '{parts[1]}'"
        return (f"field '{'.'.join(map(str, parts[2:]))}' of {where}" if len(parts) > 2 else where), str(parts[-1])
    return "field '" + ".".join(map(str, parts)) + "'", str(parts[-1]) if parts else ""


def _score(path: tuple, value: Any, quoted: set[str], nodes: set[str]) -> int:
    score = 0
    if not isinstance(value, dict | list) and str(value) in quoted:
        score += 3  # the message quotes the value: the strongest hint
    if str(path[-1]) in quoted:
        score += 2
    if path[:2] == ("topology_template", "node_templates") and len(path) > 2 and path[2] in quoted & nodes:
        score += 2  # the node the message names
    # An input or property the message names on the way there.
    return score + sum(1 for part in path[2:-1] if isinstance(part, str) and part in quoted and part not in nodes)


def locate(tpl: Template, message: str) -> Problem:
    """The message with the field it is about in front, at that field's line."""
    quoted = {a or b for a, b in _QUOTED.findall(message)}
    nodes = set(tpl.node_templates)
    best, best_score = None, 0
    for path, value in _leaves(tpl.data):
        score = _score(path, value, quoted, nodes)
        deeper = best is not None and path[: len(best)] == best  # as good, and more precise
        if score > best_score or (score == best_score and score and deeper):
            best, best_score = path, score
    if best is None:
        return Problem(tpl.display, message)
    if best[-1] == "get_input" or (len(best) > 1 and isinstance(best[-1], int) and best[-2] == "get_input"):
        best = best[: best.index("get_input")]  # `{get_input: x}` is the value of the field before it
    description, field = describe(best)
    return Problem(tpl.display, f"{description}: {message}", tpl.line(*best), field)
