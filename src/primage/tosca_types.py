"""The TOSCA types a template can use, known exactly as tosca-parser knows them.

The normative types of the TOSCA Simple Profile come from tosca-parser's own definitions
file, read section by section (node, capability, relationship, data, artifact, interface,
policy and group types), plus the profile extension the template's version names (NFV,
MEC). Then come the template's own types and those of every document it imports,
followed the way tosca-parser follows them: a path relative to the importing document,
an absolute path, a `file://` URL, a URL (or a file of a declared repository), namespace
prefixes, and the imports of imported documents.

A URL resolves offline when a local copy is known: this repository's release URLs point
at the checkout, and a URL map (`--map-url URL=PATH`) at the user's own copies. Any other
URL is fetched, as tosca-parser and IM fetch it; one this machine cannot reach leaves the
catalog incomplete (`unreachable`), which the checks report as a check they could not
make, never as the template's fault.
"""

from __future__ import annotations

import copy
import hashlib
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

import yaml

from . import paths, release, yamlio
from .errors import PrimageError, UsageError

# Section of a TOSCA document -> the prefix tosca-parser puts before a short type name there.
PREFIXES = {
    "node_types": "tosca.nodes.",
    "capability_types": "tosca.capabilities.",
    "relationship_types": "tosca.relationships.",
    "data_types": "tosca.datatypes.",
    "artifact_types": "tosca.artifacts.",
    "interface_types": "tosca.interfaces.",
    "policy_types": "tosca.policies.",
    "group_types": "tosca.groups.",
}
SECTIONS = tuple(PREFIXES)
# tosca-parser takes these sections from the template and its imports (artifact types it
# reads only from its own definitions).
CUSTOM_SECTIONS = tuple(section for section in SECTIONS if section != "artifact_types")
FETCH_TIMEOUT = 10.0


# --------------------------------------------------------------------------- normative types


@cache
def normative(version: str | None) -> dict[str, dict[str, dict]]:
    """Section -> type name -> definition, for a tosca_definitions_version."""
    from toscaparser.elements.entity_type import EntityType
    from toscaparser.extensions.exttools import ExtTools

    documents = [EntityType.TOSCA_DEF_LOAD_AS_IS]
    extension = ExtTools().get_defs_file(version) if version else None
    if extension:
        documents.append(yaml.safe_load(Path(extension).read_text(encoding="utf-8")) or {})
    sections: dict[str, dict[str, dict]] = {section: {} for section in SECTIONS}
    for document in documents:
        for section in SECTIONS:
            sections[section].update(copy.deepcopy(document.get(section) or {}))
    return sections


# --------------------------------------------------------------------------- where documents are


@dataclass(frozen=True)
class UrlMap:
    """Local copies of remote documents: a URL maps to a file, a URL ending in '/' to a folder."""

    entries: tuple[tuple[str, Path], ...] = ()

    @classmethod
    def parse(cls, options: Iterable[str]) -> UrlMap:
        entries = []
        for option in options:
            url, sep, local = option.partition("=")
            url, local = url.strip(), local.strip()
            if not sep or not url or not local or not is_url(url):
                raise UsageError(f"--map-url expects URL=PATH (a URL ending in / maps to a folder), got '{option}'")
            path = Path(local).expanduser().resolve()
            if url.endswith("/") and not path.is_dir():
                raise UsageError(f"--map-url {url}: {local} is not a folder (a URL ending in / maps to a folder)")
            if not url.endswith("/") and not path.is_file():
                raise UsageError(f"--map-url {url}: {local} is not a file")
            entries.append((url, path))
        # The longest prefix wins: a file mapped inside a mapped folder overrides the folder.
        return cls(tuple(sorted(entries, key=lambda entry: -len(entry[0]))))

    def local(self, url: str) -> Path | None:
        for prefix, path in self.entries:
            if url == prefix and not prefix.endswith("/"):
                return path
            if prefix.endswith("/") and url.startswith(prefix):
                return path / unquote(url[len(prefix) :])
        return None


def is_url(location: str) -> bool:
    # One letter is a Windows drive, not a scheme.
    return len(urlparse(location).scheme) > 1


def local_copy(location: str, url_map: UrlMap | None = None) -> Path | None:
    """The local file behind a URL: file://, the URL map, or this repository at its pinned release."""
    if location.startswith("file://"):
        return Path(unquote(urlparse(location).path))
    mapped = (url_map or UrlMap()).local(location)
    if mapped is not None:
        return mapped
    pin = release.current()
    if location.startswith(pin.raw_base):
        return paths.root() / location[len(pin.raw_base) :]
    return None


_FETCHED: dict[str, tuple[str | None, str | None, str | None]] = {}


def fetch(url: str) -> tuple[str | None, str | None, str | None]:
    """(text, error, unreachable) of a remote document; error: the server said no (the URL is wrong),
    unreachable: no answer from here (offline), which says nothing about the template."""
    if url not in _FETCHED:
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:  # noqa: S310 (what tosca-parser does)
                _FETCHED[url] = (response.read().decode("utf-8", errors="replace"), None, None)
        except urllib.error.HTTPError as exc:
            _FETCHED[url] = (None, f"the server answers HTTP {exc.code} {exc.reason}", None)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            _FETCHED[url] = (None, None, str(getattr(exc, "reason", exc)))
    return _FETCHED[url]


# --------------------------------------------------------------------------- imports


def import_location(entry: Any) -> tuple[str | None, dict | None]:
    """(file, definition) of one `imports` entry in any of TOSCA's spellings; definition is the
    mapping holding `file` (with `repository`, `namespace_prefix`...), when there is one."""
    if isinstance(entry, str):
        return entry, None
    if isinstance(entry, dict) and len(entry) == 1:
        ((_, spec),) = entry.items()
        if isinstance(spec, str):
            return spec, None
        if isinstance(spec, dict):
            return spec.get("file"), spec
    if isinstance(entry, dict):
        return entry.get("file"), entry
    return None, None


def set_import(imports: list, index: int, location: str) -> None:
    """Point one `imports` entry at `location`, keeping its spelling (a repository no longer applies)."""
    entry = imports[index]
    if isinstance(entry, str):
        imports[index] = location
    elif isinstance(entry, dict) and len(entry) == 1 and not isinstance(next(iter(entry.values())), dict):
        key = next(iter(entry))
        entry[key] = location
    else:
        spec = next(iter(entry.values())) if len(entry) == 1 else entry
        spec["file"] = location
        spec.pop("repository", None)


@dataclass
class ImportedDocument:
    """One document the template imports, directly or through another import."""

    location: str  # as the importing document writes it
    importer: str  # who imports it: the template's display path, or the URL or path of an import
    index: int  # position in the importer's `imports`
    source: str = ""  # the path or URL it was read from
    path: Path | None = None  # the local file, when it is one
    data: dict | None = None
    namespace_prefix: str | None = None
    error: str | None = None  # the import is wrong: not found, not YAML, no such repository
    unreachable: str | None = None  # remote and not answering from here: the check cannot look


def _repository_url(repositories: dict, name: str) -> str | None:
    repository = repositories.get(name)
    url = repository.get("url") if isinstance(repository, dict) else repository
    return url.strip().rstrip("/") if isinstance(url, str) else None


def _read_local(document: ImportedDocument, path: Path) -> None:
    document.source, document.path = str(path), path
    if not path.is_file():
        document.error = f"imported file not found: {document.location} (looked at {path})"
        return
    try:
        data, _ = yamlio.load_file(path)
    except PrimageError as exc:
        document.error = f"imported file {document.location} cannot be read: {exc.problem.message}"
        return
    document.data = data if isinstance(data, dict) else {}


def _read_url(document: ImportedDocument, url: str, url_map: UrlMap) -> None:
    local = local_copy(url, url_map)
    if local is not None:
        _read_local(document, local)
        return
    document.source = url
    text, error, unreachable = fetch(url)
    if error:
        document.error = f"imported URL {url} cannot be read: {error}"
    elif unreachable:
        document.unreachable = f"{url} ({unreachable})"
    else:
        try:
            data, _ = yamlio.load_text(text or "", url)
        except PrimageError as exc:
            document.error = f"imported URL {url} is not valid YAML: {exc.problem.message}"
            return
        document.data = data if isinstance(data, dict) else {}


def resolve_imports(
    data: dict, base: Path | str, display: str, url_map: UrlMap | None = None, repositories: dict | None = None
) -> list[ImportedDocument]:
    """Every document `data` imports, depth first, each once; `base` is the folder (or the URL)
    relative locations are read against. Repositories are the root template's, as in tosca-parser."""
    url_map = url_map or UrlMap()
    repositories = data.get("repositories") or {} if repositories is None else repositories
    found: list[ImportedDocument] = []
    seen: set[str] = set()

    def visit(document_data: dict, document_base: Path | str, importer: str) -> None:
        imports = document_data.get("imports") or []
        for index, entry in enumerate(imports if isinstance(imports, list) else [imports]):
            location, spec = import_location(entry)
            document = ImportedDocument(str(location or entry), importer, index)
            document.namespace_prefix = (spec or {}).get("namespace_prefix")
            found.append(document)
            if not location:
                document.error = f"import #{index + 1} names no file"
                continue
            repository = (spec or {}).get("repository")
            if repository:
                root_url = _repository_url(repositories, repository)
                if root_url is None:
                    document.error = f"import {location} names repository '{repository}', which is not declared"
                    continue
                _read_url(document, f"{root_url}/{location}", url_map)
            elif is_url(location):
                _read_url(document, location, url_map)
            elif isinstance(document_base, str):  # inside a remote document: relative to its URL
                _read_url(document, urljoin(document_base, location), url_map)
            else:
                target = Path(location) if Path(location).is_absolute() else document_base / location
                _read_local(document, target.resolve())
            if document.data is None or document.source in seen:
                continue
            seen.add(document.source)
            nested_base: Path | str = document.path.parent if document.path else document.source
            visit(document.data, nested_base, document.source)

    visit(data, base, display)
    return found


# --------------------------------------------------------------------------- the catalog


@dataclass
class TypeCatalog:
    """The types one template can use: normative, its own and its imports'."""

    version: str | None
    custom: dict[str, dict[str, dict]]  # section -> name -> definition
    imports: list[ImportedDocument] = field(default_factory=list)

    @property
    def unreachable(self) -> list[ImportedDocument]:
        return [document for document in self.imports if document.unreachable]

    @property
    def complete(self) -> bool:
        """False when an import could not be read from here: a type may live there."""
        return not self.unreachable

    @property
    def normative(self) -> dict[str, dict[str, dict]]:
        return normative(self.version)

    @cached_property
    def _tables(self) -> dict[str, dict[str, dict]]:
        # tosca-parser looks a name up in one table of every section, not in the section's own.
        tables: dict[str, dict[str, dict]] = {"normative": {}, "custom": {}}
        for kind, sections in (("normative", self.normative), ("custom", self.custom)):
            for definitions in sections.values():
                tables[kind].update(definitions)
        return tables

    def _flat(self, kind: str) -> dict[str, dict]:
        return self._tables[kind]

    def custom_definitions(self) -> dict[str, dict]:
        """Every custom type by name, as tosca-parser hands them to its validators."""
        return self._tables["custom"]

    def resolve(self, name: Any, section: str) -> str | None:
        """The type `name` stands for where tosca-parser expects a type of `section`, or None.

        tosca-parser drops a `tosca:` prefix, looks the name up among custom types as written,
        then among normative ones completed with the section's prefix (`Compute` is
        `tosca.nodes.Compute` for a node)."""
        if not isinstance(name, str) or not name:
            return None
        prefix = PREFIXES[section]
        short = name[len("tosca:") :] if name.startswith("tosca:") else name
        full = short if short.startswith("tosca") and not name.startswith("tosca:") else prefix + short
        if short in self._flat("custom"):
            return short
        if full in self._flat("normative"):
            return full
        return None

    def names(self, section: str) -> list[str]:
        """Every type of a section: what a did-you-mean draws from."""
        return sorted(set(self.normative[section]) | set(self.custom.get(section) or {}))

    def definition(self, name: str) -> dict:
        return self._flat("custom").get(name) or self._flat("normative").get(name) or {}

    def chain(self, name: Any, section: str) -> list[dict]:
        """The definitions of a type and of the types it derives from, nearest first."""
        chain, seen = [], set()
        current = self.resolve(name, section)
        while current and current not in seen:
            seen.add(current)
            definition = self.definition(current) or {}
            chain.append(definition)
            current = self.resolve(definition.get("derived_from"), section)
        return chain

    def merged(self, name: Any, section: str, key: str) -> dict:
        """A mapping (properties, artifacts, capabilities...) of a type with what it inherits."""
        result: dict = {}
        for definition in reversed(self.chain(name, section)):
            value = definition.get(key)
            if isinstance(value, dict):
                result.update(value)
        return result


def catalog(data: dict, base: Path | str, display: str, url_map: UrlMap | None = None) -> TypeCatalog:
    """The types of a template (`data`, read from the folder or URL `base`)."""
    imported = resolve_imports(data, base, display, url_map)
    custom: dict[str, dict[str, dict]] = {section: {} for section in CUSTOM_SECTIONS}
    for document in imported:
        for section in CUSTOM_SECTIONS:
            types = (document.data or {}).get(section)
            if not isinstance(types, dict):
                continue
            prefix = f"{document.namespace_prefix}." if document.namespace_prefix else ""
            custom[section].update({prefix + str(name): value or {} for name, value in types.items()})
    for section in CUSTOM_SECTIONS:
        if isinstance(data.get(section), dict):
            custom[section].update({str(name): value or {} for name, value in data[section].items()})
    version = data.get("tosca_definitions_version")
    return TypeCatalog(str(version) if version else None, custom, imported)


# --------------------------------------------------------------------------- offline copies for the tools


def localize(data: dict, base: Path, url_map: UrlMap | None, work: Path) -> dict:
    """A copy of `data` the tools can read offline: every import that resolves locally becomes
    an absolute path (tosca-parser, as IM calls it, reads no relative import), and every
    string that is a URL with a local copy becomes a file:// URL (repositories, artifacts).
    An imported document that needs the same is written, localized, under `work`."""
    url_map = url_map or UrlMap()
    done: dict[Path, Path] = {}

    def local_url(value: str) -> str:
        if not value.startswith(("http://", "https://", "ftp://")):
            return value
        local = local_copy(value, url_map)
        if local is None:
            return value
        return f"file://{local}" + ("/" if value.endswith("/") and not str(local).endswith("/") else "")

    def rewrite_strings(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: rewrite_strings(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite_strings(item) for item in node]
        return local_url(node) if isinstance(node, str) else node

    def document_copy(path: Path) -> Path:
        if path in done:
            return done[path]
        done[path] = path  # an import cycle ends here
        try:
            imported, _ = yamlio.load_file(path)
        except PrimageError:
            return path  # the tools report what is wrong with it
        if not isinstance(imported, dict):
            return path
        if rewrite(imported, path.parent, keep_relative=True) == imported:
            return path  # tosca-parser reads it as it is, its relative imports too
        rewritten = rewrite(imported, path.parent, keep_relative=False)
        digest = hashlib.sha256(f"{path}\n{yamlio.dump(rewritten)}".encode()).hexdigest()[:16]
        target = work / digest / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yamlio.dump(rewritten), encoding="utf-8")
        done[path] = target
        return target

    def rewrite(document: dict, folder: Path, keep_relative: bool) -> dict:
        result = rewrite_strings({key: value for key, value in document.items() if key != "imports"})
        if "imports" not in document:
            return result
        imports = copy.deepcopy(document["imports"])
        repositories = document.get("repositories") or {}
        for index, entry in enumerate(imports if isinstance(imports, list) else []):
            location, spec = import_location(entry)
            if not isinstance(location, str):
                continue
            repository = (spec or {}).get("repository")
            root_url = _repository_url(repositories, repository) if repository else None
            if root_url:
                location = f"{root_url}/{location}"
            if is_url(location):
                local = local_copy(location, url_map)
            elif repository:
                local = None  # an undeclared repository: the tools say so
            else:
                local = (Path(location) if Path(location).is_absolute() else folder / location).resolve()
            if local is None or not local.is_file():
                continue
            target = document_copy(local)
            relative = not repository and not is_url(location) and not Path(location).is_absolute()
            if not (keep_relative and relative and target == local):
                set_import(imports, index, str(target))
        # The document's keys in their order, `imports` where it was.
        return {key: (imports if key == "imports" else result[key]) for key in document}

    return rewrite(data, base, keep_relative=False)
