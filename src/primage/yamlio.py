"""YAML reading that keeps line numbers and refuses duplicate keys.

PyYAML silently keeps the last of two equal keys; a template author who writes
`default:` twice never learns which one IM used. Every YAML file the harness reads
goes through here, so the error names the file and both lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import PrimageError


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader (libyaml's when PyYAML has it: several times faster) that refuses duplicate mapping keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise PrimageError(
                f"duplicate key '{key}' (first defined on line {seen[key]}); "
                "YAML keeps only the last one, so remove or rename one of them",
                file=loader.name,
                line=line,
                field=str(key),
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class LineIndex:
    """Maps a path of keys (and list indexes) in a YAML document to its line number."""

    def __init__(self, root: yaml.Node | None):
        self._lines: dict[tuple, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: tuple) -> None:
        self._lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key_path = (*path, key_node.value)
                self._lines[key_path] = key_node.start_mark.line + 1
                self._walk(value_node, key_path)
                self._lines[key_path] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def path_at(self, line: int) -> tuple | None:
        """The deepest key path that starts on `line` (what a finding on that line is about)."""
        paths = [path for path, start in self._lines.items() if start == line and path]
        if not paths:
            return None
        deepest = max(paths, key=len)
        while len(deepest) > 1 and isinstance(deepest[-1], int):
            deepest = deepest[:-1]  # name the key, not the position in its list
        return deepest

    def line_of(self, *path: Any) -> int | None:
        """Line of the deepest existing prefix of `path` (the closest thing to point at)."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return self._lines.get((), None)


def load_text(text: str, filename: str | Path) -> tuple[Any, LineIndex]:
    """Parse YAML text; syntax errors and duplicate keys become PrimageError naming the file."""
    name = str(filename)
    try:
        loader = _Loader(text)
        loader.name = name
        try:
            root = loader.get_single_node()  # one parse: the node tree gives the lines and the data
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise PrimageError(f"YAML syntax error: {what}", file=name, line=line) from None
    except yaml.YAMLError as exc:
        raise PrimageError(f"YAML error: {exc}", file=name) from None
    return data, LineIndex(root)


def load_file(path: str | Path) -> tuple[Any, LineIndex]:
    from .paths import relative

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PrimageError("file not found", file=relative(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PrimageError(f"cannot read the file: {exc}", file=relative(path)) from None
    return load_text(text, relative(path))


def dump(data: Any) -> str:
    """YAML text as people write it: block style, keys in their original order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
