"""Changing a deployed infrastructure: new input values, more or fewer workers.

How, read from IM (IM/rest/routers/infrastructures.py, IM/tosca/Tosca.py):

- An infrastructure created from TOSCA keeps its template at IM. POSTing a template to
  the infrastructure merges it into the stored one, deploys the difference between each
  node's `count` and its VMs, and re-runs contextualization when nothing else changed.
  So new input values are the stored template with new defaults, and workers are added
  by raising the worker node's count there: IM's template, its outputs and any later
  update then agree with the VMs, and primage checks the count against the template's
  bounds (min/max_instances) first.
- An infrastructure created from RADL (an EC3 composition) has no template: workers are
  added with a RADL that deploys more of the worker system (`wn`), within EC3's
  `ec3_max_instances` when the system declares it.
- Workers are removed the same way for both: the highest-numbered VMs of the worker node
  (the newest; the front end and the first workers stay) through IM's removeresource.
  Lowering the TOSCA count instead would make IM remove the *oldest* workers, and its
  `removal_list` cannot be cleared again once merged into the stored template (IM merges
  lists item by item), so a later scale-down would name VMs already gone. For TOSCA the
  count is then brought down to match, without a new contextualization.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from radl.radl_parse import parse_radl

from . import tosca, yamlio
from .errors import PrimageError, UsageError
from .im_rest import IMClient
from .infra import VM, vms


@dataclass
class StoredTemplate(tosca.Template):
    """The TOSCA template IM keeps for an infrastructure, checked with primage's input checks."""

    label: str = ""

    @property
    def display(self) -> str:
        return self.label

    def line(self, *path) -> None:  # IM's copy is not the user's file: its lines mean nothing to them
        return None


def stored_template(im: IMClient, infrastructure: str) -> StoredTemplate | None:
    """IM's TOSCA template of the infrastructure, or None for one created from RADL."""
    text = im.optional_property(infrastructure, "tosca")
    if text is None:
        return None
    label = f"infrastructure {infrastructure}'s template at IM"
    data, lines = yamlio.load_text(text, label)
    return StoredTemplate(Path.cwd() / f"{infrastructure}.yaml", data, lines, label)


def with_inputs(tpl: StoredTemplate, values: dict[str, tosca.InputValue]) -> dict:
    """The template with new input defaults, refused when a new value breaks its definition."""
    scalable_nodes = set(scalable(tpl))
    problems = [p for p in tosca.input_problems(tpl, values) if p.field in set(values) | scalable_nodes]
    if problems:
        raise tosca.RenderError(problems)
    return tosca.apply_inputs(tpl.data, values)


def update_inputs(im: IMClient, infrastructure: str, values: dict[str, tosca.InputValue]) -> list[str]:
    """New input values for a TOSCA infrastructure; IM reconfigures it (and scales a changed count)."""
    tpl = stored_template(im, infrastructure)
    if tpl is None:
        raise UsageError(
            f"infrastructure {infrastructure} was created from RADL, which has no inputs; run "
            f"`primage infra reconfigure {infrastructure}` without -i/--set to contextualize it again"
        )
    return im.add(infrastructure, yamlio.dump(with_inputs(tpl, values)), "tosca")


# --------------------------------------------------------------------------- workers


def scalable(tpl: tosca.Template) -> dict[str, dict]:
    """Nodes with a `scalable` capability: name -> its properties."""
    found = {}
    for name, node in tpl.node_templates.items():
        properties = (((node or {}).get("capabilities") or {}).get("scalable") or {}).get("properties")
        if isinstance(properties, dict):
            found[name] = properties
    return found


def _tosca_worker(tpl: StoredTemplate, chosen: str | None) -> str:
    nodes = scalable(tpl)
    if chosen:
        if chosen not in nodes:
            raise UsageError(
                f"--node {chosen}: not a scalable node of {tpl.display} (scalable: {', '.join(nodes) or 'none'})"
            )
        return chosen
    if len(nodes) != 1:
        what = f"several scalable nodes ({', '.join(nodes)}): choose one with --node" if nodes else "no scalable node"
        raise UsageError(f"{tpl.display} has {what}")
    return next(iter(nodes))


def _with_count(tpl: StoredTemplate, node: str, count: int) -> dict:
    """The template with the node's count set: through its input when the count reads one."""
    current = scalable(tpl)[node].get("count")
    if isinstance(current, dict) and isinstance(current.get("get_input"), str):
        name = current["get_input"]
        return with_inputs(tpl, {name: tosca.InputValue(count, "--workers", "--workers", None)})
    data = copy.deepcopy(tpl.data)
    data["topology_template"]["node_templates"][node]["capabilities"]["scalable"]["properties"]["count"] = count
    changed = StoredTemplate(tpl.path, data, tpl.lines, tpl.label)
    problems = tosca.scalable_problems(changed, {})
    if problems:
        raise tosca.RenderError(problems)
    return data


def _radl_worker(radl_text: str, chosen: str | None, infrastructure: str):
    parsed = parse_radl(radl_text)
    names = [system.name for system in parsed.systems]
    name = chosen or ("wn" if "wn" in names else None)
    if name not in names:
        flag = f"--node {chosen}: no such system" if chosen else "no system 'wn'; choose the worker system with --node"
        raise UsageError(f"infrastructure {infrastructure}: {flag} (systems: {', '.join(names)})")
    return parsed, parsed.get_system_by_name(name)


def workers_of(members: list[VM], node: str) -> list[VM]:
    return sorted((vm for vm in members if vm.node == node), key=lambda vm: int(vm.id))


def _members(im: IMClient, infrastructure: str) -> list[VM]:
    return vms(im, infrastructure, im.state(infrastructure)["vm_states"])


def add_workers(im: IMClient, infrastructure: str, count: int, node: str | None) -> tuple[str, list[str]]:
    """Deploy `count` more workers; returns the worker node and the new VM ids."""
    members = _members(im, infrastructure)
    tpl = stored_template(im, infrastructure)
    if tpl is not None:
        node = _tosca_worker(tpl, node)
        target = len(workers_of(members, node)) + count
        added = im.add(infrastructure, yamlio.dump(_with_count(tpl, node, target)), "tosca")
    else:
        parsed, system = _radl_worker(im.radl(infrastructure), node, infrastructure)
        node = system.name
        bound = system.getValue("ec3_max_instances")
        current = len(workers_of(members, node))
        if bound is not None and current + count > int(bound):
            raise PrimageError(
                f"infrastructure {infrastructure}: system '{node}' may have at most {bound} instances "
                f"(ec3_max_instances) and has {current}; {count} more would be {current + count}"
            )
        networks = "".join(f"network {network.id}\n" for network in parsed.networks)
        added = im.add(infrastructure, f"{networks}system {node}\n\ndeploy {node} {count}\n", "radl")
    if len(added) != count:
        raise PrimageError(
            f"IM added {len(added)} of the {count} workers asked for ({', '.join(added) or 'none'}); see "
            f"`primage infra show {infrastructure}` for its log"
        )
    return node, added


def remove_workers(im: IMClient, infrastructure: str, count: int, node: str | None) -> tuple[str, list[str]]:
    """Remove the `count` highest-numbered workers; returns the worker node and the removed VM ids."""
    members = _members(im, infrastructure)
    tpl = stored_template(im, infrastructure)
    node = (
        _tosca_worker(tpl, node)
        if tpl is not None
        else _radl_worker(im.radl(infrastructure), node, infrastructure)[1].name
    )
    workers = workers_of(members, node)
    if count > len(workers):
        raise PrimageError(
            f"infrastructure {infrastructure} has {len(workers)} workers of node '{node}'; cannot remove {count}"
        )
    # Checked before anything is deleted: a count below min_instances is refused here.
    lowered = _with_count(tpl, node, len(workers) - count) if tpl is not None else None
    chosen = [vm.id for vm in workers[len(workers) - count :]]
    im.remove_vms(infrastructure, chosen)
    if lowered is not None:
        unexpected = im.add(infrastructure, yamlio.dump(lowered), "tosca", context=False)
        if unexpected:
            raise PrimageError(
                f"removed VMs {', '.join(chosen)}, but IM then deployed {', '.join(unexpected)} when told the new "
                f"count; see `primage infra show {infrastructure}`"
            )
    return node, chosen
