"""YAML loading that remembers where every value came from.

We compose the YAML into a node tree (ruamel.yaml's C parser when available:
about 0.5 ms for a 50-line flow) and build plain Python values ourselves, so we
can record the line and column of every mapping key, sequence item and scalar,
and reject duplicate keys with their exact position.

Positions are 1-based (line 1, column 1 is the first character of the file), as
editors and GitHub annotations count them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# Files above this size are refused before parsing: a flows repository holds
# small hand-written files, and a 10 MB file is almost certainly a mistake.
MAX_FILE_BYTES = 1_000_000

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int
    column: int


@dataclass
class PositionMap:
    """Where each path inside a document starts.

    `keys[path]` is the position of the mapping key whose value lives at `path`;
    `values[path]` is the position of the value itself.
    """

    keys: dict[Path_, Position] = field(default_factory=dict)
    values: dict[Path_, Position] = field(default_factory=dict)

    def find(self, path: Path_, *, prefer_key: bool = False) -> Position:
        """Best position for `path`: the node itself, else its closest known ancestor."""
        p = tuple(path)
        while True:
            table_first, table_second = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            if p in table_first:
                return table_first[p]
            if p in table_second:
                return table_second[p]
            if not p:
                return Position(1, 1)
            p = p[:-1]


class YamlLoadError(Exception):
    """The file is not loadable YAML. Carries a diagnostic code and a position."""

    def __init__(self, code: str, message: str, position: Position, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.position = position
        self.hint = hint


@dataclass
class LoadedDocument:
    data: Any
    positions: PositionMap


_yaml = YAML(typ="safe", pure=False)


def _pos(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(node: ScalarNode) -> Any:
    # The resolver already tagged the scalar (int, float, bool, null, timestamp, str);
    # the safe constructor turns the tag into the Python value.
    return _yaml.constructor.construct_object(node, deep=True)


def _build(node: Node, path: Path_, positions: PositionMap) -> Any:
    positions.values[path] = _pos(node)
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlLoadError(
                    "yaml-merge-key",
                    "YAML merge keys (<<) are not supported",
                    _pos(key_node),
                    "write the keys out; flowctl resources are meant to be read without expanding anchors",
                )
            if not isinstance(key_node, ScalarNode):
                raise YamlLoadError("yaml-complex-key", "mapping keys must be plain scalars", _pos(key_node))
            key = _scalar(key_node)
            if isinstance(key, dt.date | dt.datetime):
                # A holiday key such as `2026-10-01:` reads better as a string.
                key = key.isoformat()
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise YamlLoadError("yaml-complex-key", "mapping keys must be plain scalars", _pos(key_node))
            if isinstance(key, bool) or key is None or isinstance(key, int | float):
                key = str(key_node.value)
            if key in result:
                first = positions.keys[(*path, key)]
                raise YamlLoadError(
                    "yaml-duplicate-key",
                    f"duplicate key '{key}' (first defined at line {first.line}, column {first.column})",
                    _pos(key_node),
                    "remove one of the two; YAML keeps only the last, which silently drops the first",
                )
            positions.keys[(*path, key)] = _pos(key_node)
            result[key] = _build(value_node, (*path, key), positions)
        return result
    if isinstance(node, SequenceNode):
        return [_build(item, (*path, i), positions) for i, item in enumerate(node.value)]
    assert isinstance(node, ScalarNode)
    return _scalar(node)


def _error_from_yaml(exc: YAMLError) -> YamlLoadError:
    mark = None
    problem = str(exc)
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or problem
    position = Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)
    code = "yaml-syntax"
    hint = "fix the YAML syntax; a linter such as yamllint shows the same spot"
    if "\t" in problem or "tab" in problem.lower():
        code = "yaml-tab"
        hint = "YAML indentation must use spaces, not tabs"
    return YamlLoadError(code, f"YAML syntax error: {problem.strip()}", position, hint)


def load_text(text: str) -> LoadedDocument:
    """Parse one YAML document from text. Raises YamlLoadError."""
    if "\x00" in text:
        raise YamlLoadError("file-binary", "file is binary, not YAML text", Position(1, 1))
    tab_line = _leading_tab(text)
    try:
        nodes = list(_yaml.compose_all(text))
    except YAMLError as exc:
        err = _error_from_yaml(exc)
        if tab_line is not None and err.code == "yaml-syntax":
            # The parser reports the symptom further down; the tab is the cause.
            err = YamlLoadError(
                "yaml-tab",
                "tab character used for indentation",
                tab_line,
                "YAML indentation must use spaces, not tabs",
            )
        raise err from None
    except RecursionError:
        raise YamlLoadError("yaml-too-deep", "YAML nesting is too deep", Position(1, 1)) from None
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        raise YamlLoadError("file-empty", "file is empty", Position(1, 1), "add a resource with `kind` and `name`, or delete the file")
    if len(nodes) > 1:
        raise YamlLoadError(
            "yaml-multiple-documents",
            "file holds more than one YAML document",
            _pos(nodes[1]),
            "put one resource in each file",
        )
    positions = PositionMap()
    data = _build(nodes[0], (), positions)
    return LoadedDocument(data, positions)


def _leading_tab(text: str) -> Position | None:
    for i, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            return Position(i, len(line) - len(stripped) + 1)
    return None


def load_file(path: Path) -> LoadedDocument:
    """Read and parse one YAML file. Raises YamlLoadError (with code file-*) for unreadable files."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise YamlLoadError("file-unreadable", f"cannot read file: {exc.strerror}", Position(1, 1)) from None
    if size > MAX_FILE_BYTES:
        raise YamlLoadError(
            "file-too-large",
            f"file is {size:,} bytes; resources are limited to {MAX_FILE_BYTES:,} bytes",
            Position(1, 1),
            "split it into several resources or move data out of the repository",
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlLoadError("file-unreadable", f"cannot read file: {exc.strerror}", Position(1, 1)) from None
    if b"\x00" in raw:
        raise YamlLoadError("file-binary", "file is binary, not YAML text", Position(1, 1))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlLoadError("file-encoding", "file is not valid UTF-8", Position(line, 1), "save it as UTF-8") from None
    return load_text(text)
