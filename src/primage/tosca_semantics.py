"""Semantic checks of TOSCA templates: what tosca-parser lets through or explains badly,
and IM answers cryptically or drops without a word.

Each finding here is one that would break the deployment, and says how: an unknown type
(tosca-parser stops with no hint; the did-you-mean comes from the types tosca-parser
knows, see tosca_types), an import that cannot be read, a requirement that names no
node, a relationship type nothing defines (IM drops the relationship: a volume is not
attached), an artifact that does not exist or names an undeclared repository (IM cannot
read the playbook when it configures the node). A type defined in an import this machine
cannot fetch is never called unknown. A reference to this repository must name its
release (`release_pin_problems`): the playbooks of a moving branch need not accept what
the types of the release pass them.
"""

from __future__ import annotations

import difflib
from typing import Any

from . import release
from .errors import Problem
from .tosca import Template
from .tosca_types import PREFIXES, ImportedDocument, TypeCatalog, UrlMap, is_url, local_copy

NODES = ("topology_template", "node_templates")


def semantic_problems(tpl: Template, types: TypeCatalog, url_map: UrlMap | None = None) -> list[Problem]:
    problems = [_import_problem(tpl, document) for document in types.imports if document.error]
    nodes = tpl.node_templates
    for name, node in nodes.items():
        node = node if isinstance(node, dict) else {}
        type_problem = _unknown_type(tpl, types, node.get("type"), "node_types", f"node '{name}'", (*NODES, name))
        if type_problem:
            problems.append(type_problem)
            continue
        problems.extend(_requirement_problems(tpl, types, name, node))
        problems.extend(_artifact_problems(tpl, types, name, node, url_map))
        problems.extend(_front_end_group_problems(tpl, name, node, nodes))
    problems.extend(_group_and_policy_problems(tpl, types))
    return problems


def _import_problem(tpl: Template, document: ImportedDocument) -> Problem:
    if document.importer == tpl.display:
        return tpl.problem(document.error or "", "imports", document.index, field=document.location)
    return tpl.problem(f"{document.error} (imported by {document.importer})", "imports", field=document.location)


def _close_match(name: str, candidates: list[str], prefix: str) -> str | None:
    """The known type `name` most likely meant, also when it is written short (`Compte`)."""
    short = {candidate[len(prefix) :]: candidate for candidate in candidates if candidate.startswith(prefix)}
    written = name.removeprefix("tosca:")
    for pool, mapping in ((candidates, None), (list(short), short)):
        close = difflib.get_close_matches(written, pool, n=1, cutoff=0.6)
        if close:
            return mapping[close[0]] if mapping else close[0]
    return None


def _unknown_type(
    tpl: Template, types: TypeCatalog, type_name: Any, section: str, what: str, path: tuple
) -> Problem | None:
    if types.resolve(type_name, section) or not types.complete:
        return None
    kind = section.removesuffix("_types").replace("_", " ")
    close = _close_match(str(type_name), types.names(section), PREFIXES[section])
    if close:
        hint = f"did you mean '{close}'?"
    else:
        custom = sorted(types.custom.get(section) or {})
        hint = (
            f"it is no normative {kind} type of the TOSCA Simple Profile, and the template and its imports "
            f"define: {', '.join(custom) or 'none'}"
        )
    return tpl.problem(f"{what} has unknown type '{type_name}'; {hint}", *path, "type", field=path[-1])


def _requirement_entries(node: dict) -> list[tuple[int, str, Any]]:
    entries = []
    for index, requirement in enumerate(node.get("requirements") or []):
        if isinstance(requirement, dict):
            for name, target in requirement.items():
                entries.append((index, name, target))
    return entries


def _requirement_problems(tpl: Template, types: TypeCatalog, name: str, node: dict) -> list[Problem]:
    problems = []
    nodes = tpl.node_templates
    relationship_templates = (tpl.data.get("topology_template") or {}).get("relationship_templates") or {}
    for index, requirement, target in _requirement_entries(node):
        path = (*NODES, name, "requirements", index)
        target_node = target.get("node") if isinstance(target, dict) else target
        if isinstance(target_node, str) and target_node not in nodes and not types.resolve(target_node, "node_types"):
            problems.append(
                tpl.problem(
                    f"requirement '{requirement}' of node '{name}' points at '{target_node}', which is not a "
                    f"node of this template (nodes: {', '.join(nodes)})",
                    *path,
                    field=name,
                )
            )
        relationship = target.get("relationship") if isinstance(target, dict) else None
        if isinstance(relationship, str) and relationship not in relationship_templates:
            problem = _relationship_problem(tpl, types, name, requirement, relationship, path, exact=True)
        elif isinstance(relationship, dict) and isinstance(relationship.get("type"), str):
            problem = _relationship_problem(tpl, types, name, requirement, relationship["type"], path, exact=False)
        else:
            problem = None
        if problem:
            problems.append(problem)
    return problems


def _relationship_problem(
    tpl: Template, types: TypeCatalog, node: str, requirement: str, written: str, path: tuple, exact: bool
) -> Problem | None:
    """A relationship type tosca-parser does not find: it drops the relationship without a word.

    Written as `relationship: NAME`, tosca-parser takes the name as it is (a relationship
    template or a full type name); as `relationship: {type: NAME}` it also completes a
    short name (`AttachesTo`)."""
    resolved = types.resolve(written, "relationship_types")
    if (resolved == written if exact else resolved) or not types.complete:
        return None
    if resolved:
        hint = f"write the full name '{resolved}' (tosca-parser completes short names only under 'type:')"
    else:
        close = _close_match(written, types.names("relationship_types"), PREFIXES["relationship_types"])
        hint = f"did you mean '{close}'?" if close else "no relationship type or template has that name"
    return tpl.problem(
        f"requirement '{requirement}' of node '{node}' uses relationship '{written}', which tosca-parser does "
        f"not find, so it and IM drop the relationship and the deployment would lack it (e.g. an unattached "
        f"volume); {hint}",
        *path,
        requirement,
        "relationship",
        field=node,
    )


def _group_and_policy_problems(tpl: Template, types: TypeCatalog) -> list[Problem]:
    topology = tpl.data.get("topology_template") or {}
    problems = []
    for name, group in (topology.get("groups") or {}).items():
        if isinstance(group, dict):
            path = ("topology_template", "groups", name)
            problem = _unknown_type(tpl, types, group.get("type"), "group_types", f"group '{name}'", path)
            problems.extend([problem] if problem else [])
    policies = topology.get("policies") or []
    for index, entry in enumerate(policies if isinstance(policies, list) else [policies]):
        for name, policy in (entry or {}).items() if isinstance(entry, dict) else []:
            if isinstance(policy, dict):
                path = ("topology_template", "policies", index, name)
                problem = _unknown_type(tpl, types, policy.get("type"), "policy_types", f"policy '{name}'", path)
                problems.extend([problem] if problem else [])
    return problems


def _implementations(interfaces: dict) -> list[str]:
    """Every file an interface operation names as its implementation."""
    found = []
    for operations in (interfaces or {}).values():
        for operation, definition in (operations or {}).items() if isinstance(operations, dict) else []:
            if operation in ("type", "inputs"):
                continue
            implementation = definition.get("implementation") if isinstance(definition, dict) else definition
            if isinstance(implementation, dict):
                implementation = implementation.get("primary")
            if isinstance(implementation, str):
                found.append(implementation)
    return found


def _artifact_problems(tpl: Template, types: TypeCatalog, name: str, node: dict, url_map: UrlMap | None) -> list:
    problems = []
    artifacts: dict[str, Any] = types.merged(node.get("type"), "node_types", "artifacts")
    artifacts.update(node.get("artifacts") or {})
    repositories = tpl.data.get("repositories") or {}
    path = (*NODES, name)
    locations: list[tuple[str, str]] = []  # (what, URL) of every artifact file named by URL
    for artifact_name, artifact in artifacts.items():
        file = artifact.get("file") if isinstance(artifact, dict) else artifact
        repository = artifact.get("repository") if isinstance(artifact, dict) else None
        if not isinstance(file, str):
            continue
        if repository is None:
            if is_url(file):
                locations.append((f"artifact '{artifact_name}'", file))
            continue
        if repository not in repositories:
            problems.append(
                tpl.problem(
                    f"artifact '{artifact_name}' of node '{name}' uses repository '{repository}', which the template "
                    f"does not declare under 'repositories' (declared: {', '.join(repositories) or 'none'}); "
                    "IM could not fetch it to configure the node",
                    *path,
                    field=name,
                )
            )
            continue
        repo = repositories[repository]
        url = repo.get("url") if isinstance(repo, dict) else repo
        if isinstance(url, str):
            locations.append((f"artifact '{artifact_name}'", f"{url.strip().rstrip('/')}/{file}"))
    interfaces = types.merged(node.get("type"), "node_types", "interfaces")
    interfaces.update(node.get("interfaces") or {})
    for implementation in _implementations(interfaces):
        if implementation not in artifacts and is_url(implementation):
            locations.append((f"implementation {implementation}", implementation))
    for what, url in locations:
        problem = _missing_file(tpl, name, what, url, url_map, path)
        if problem:
            problems.append(problem)
    return problems


def _missing_file(tpl: Template, name: str, what: str, url: str, url_map, path: tuple) -> Problem | None:
    local = local_copy(url, url_map)
    if local is None or local.exists():
        return None  # remote: IM fetches it (the im-translate check sees whether it can)
    pin = release.current()
    if url.startswith(pin.raw_base):
        where = f"names {url[len(pin.raw_base) :]}, which does not exist in this repository"
    else:
        where = f"is {url}, which does not exist (looked at {local})"
    return tpl.problem(f"{what} of node '{name}' {where}; IM could not run it to configure the node", *path, field=name)


def _front_end_group_problems(tpl: Template, name: str, node: dict, nodes: dict) -> list[Problem]:
    group = (node.get("properties") or {}).get("front_end_group")
    if isinstance(group, str) and group not in nodes:
        return [
            tpl.problem(
                f"front_end_group '{group}' of node '{name}' names no node of this template; "
                "the workers would not find their front end",
                *NODES,
                name,
                "properties",
                "front_end_group",
                field=name,
            )
        ]
    return []


def release_pin_problems(tpl: Template) -> list[Problem]:
    """References to this repository name its release tag: the types and the playbooks are one release."""
    problems = []
    pin = release.current()
    for name, repo in (tpl.data.get("repositories") or {}).items():
        url = repo.get("url") if isinstance(repo, dict) else repo
        if not isinstance(url, str) or not url.startswith(pin.repository):
            continue
        refs = pin.pinned_refs(url)
        if not refs or refs[0] in release.UNPINNED_REFS or refs[0] != pin.tag:
            problems.append(
                tpl.problem(
                    f"repository '{name}' must point at the release tag {pin.tag} (ansible/galaxy.yml version), "
                    f"got {url}; the playbooks of another ref need not accept what the types of the release "
                    "pass them",
                    "repositories",
                    name,
                    field=name,
                )
            )
    return problems
