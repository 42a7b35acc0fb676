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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

# Files above this size are refused before parsing: a flows repository holds
# small hand-written files, and a 10 MB file is almost certainly a mistake.
MAX_FILE_BYTES = 1_000_000

Path_ = tuple[str | int, ...]


class Position(NamedTuple):
    # A NamedTuple, not a dataclass: a repository has ~100 positions per file
    # and creating them is a measurable part of loading 1,000 flows.
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
    # Where a scalar that spans several lines ends (block scalars, folded plain
    # text): lets validate point inside a multi-line template.
    ends: dict[Path_, Position] = field(default_factory=dict)

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
    # The source text, kept so a diagnostic can point inside a scalar (a
    # template's undefined variable on the third line of an `html: |` block).
    text: str = ""


class _CachedResolver(VersionedResolver):
    """ruamel's resolver looks up the YAML version (by catching an AttributeError
    from the C parser) for every scalar; we read it once per document."""

    _cached: Any = None

    @property
    def versioned_resolver(self) -> Any:
        if self._cached is None:
            self._cached = super().versioned_resolver
        return self._cached

    def reset(self) -> None:
        self._cached = None


_yaml = YAML(typ="safe", pure=False)
_yaml.Resolver = _CachedResolver
_STR_TAG = "tag:yaml.org,2002:str"

try:
    from _ruamel_yaml import CParser as _CParser  # ruamel.yaml.clib: libyaml's parser and composer
except ImportError:  # pragma: no cover - platforms without the C extension
    _CParser = None

if _CParser is not None:

    class _CComposer(_CParser, SafeConstructor, _CachedResolver):
        """What `YAML(typ="safe", pure=False).compose_all` assembles on every call
        (it defines a loader class per call), assembled once."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            self._parser = self._composer = self
            SafeConstructor.__init__(self, loader=self)
            self.allow_duplicate_keys = False
            _CachedResolver.__init__(self, loadumper=self)


def _compose_all(text: str) -> list[Node]:
    if _CParser is None:
        resolver = _yaml.resolver
        if isinstance(resolver, _CachedResolver):
            resolver.reset()  # a %YAML directive may change the version per document
        return list(_yaml.compose_all(text))
    composer = _CComposer(text)
    try:
        nodes = []
        while composer.check_node():
            nodes.append(composer.get_node())
        return nodes
    finally:
        composer.dispose()

# A hand-written resource has a few hundred nodes; aliases can expand a small
# file into billions ("billion laughs"), so building stops past this budget.
MAX_NODES = 200_000


def _pos(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(node: Node) -> Any:
    # The resolver already tagged the scalar (int, float, bool, null, timestamp, str);
    # the safe constructor turns the tag into the Python value. It raises on
    # values that look typed but are not (2026-13-01) and on unknown tags (!foo).
    tag = node.ctag
    if tag.handle is None and tag.suffix == _STR_TAG:
        return node.value  # most scalars: no constructor needed
    try:
        return _yaml.constructor.construct_object(node, deep=True)
    except YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlLoadError(
            "yaml-bad-value",
            f"cannot read value {node.value!r}: {problem.strip()}",
            _pos(node),
            "quote it to keep it as text; flowctl resources use no YAML tags",
        ) from None
    except (ValueError, OverflowError) as exc:
        raise YamlLoadError(
            "yaml-bad-value",
            f"invalid value {node.value!r}: {exc}",
            _pos(node),
            "fix the date or number, or quote it to keep it as text",
        ) from None


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


def _build(node: Node, path: Path_, positions: PositionMap, budget: _Budget | None = None) -> Any:
    # The hot loop of loading (one call per value of every file): attribute
    # lookups are hoisted and the common case (plain string keys and values)
    # skips the constructor.
    if budget is None:
        budget = _Budget()
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise YamlLoadError(
            "yaml-too-large",
            f"document expands to more than {MAX_NODES:,} values",
            _pos(node),
            "aliases (*name) that repeat large anchors multiply the document; write it out plainly",
        )
    mark = node.start_mark
    positions.values[path] = Position(mark.line + 1, mark.column + 1)
    cls = node.__class__
    if cls is MappingNode or isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        keys = positions.keys
        for key_node, value_node in node.value:
            key = _key(key_node)
            key_path = (*path, key)
            if key in result:
                first = keys[key_path]
                raise YamlLoadError(
                    "yaml-duplicate-key",
                    f"duplicate key '{key}' (first defined at line {first.line}, column {first.column})",
                    _pos(key_node),
                    "remove one of the two; YAML keeps only the last, which silently drops the first",
                )
            kmark = key_node.start_mark
            keys[key_path] = Position(kmark.line + 1, kmark.column + 1)
            result[key] = _build(value_node, key_path, positions, budget)
        return result
    if cls is SequenceNode or isinstance(node, SequenceNode):
        return [_build(item, (*path, i), positions, budget) for i, item in enumerate(node.value)]
    end = node.end_mark
    if end is not None and end.line != mark.line:
        positions.ends[path] = Position(end.line + 1, end.column + 1)
    return _scalar(node)


def _key(key_node: Node) -> str:
    """A mapping key as a string (keys are names: `1:` or `2026-10-01:` become text)."""
    if key_node.__class__ is not ScalarNode and not isinstance(key_node, ScalarNode):
        raise YamlLoadError("yaml-complex-key", "mapping keys must be plain scalars", _pos(key_node))
    tag = key_node.ctag
    if tag.handle is None and tag.suffix == _STR_TAG:
        return str(key_node.value)
    if tag == "tag:yaml.org,2002:merge":
        raise YamlLoadError(
            "yaml-merge-key",
            "YAML merge keys (<<) are not supported",
            _pos(key_node),
            "write the keys out; flowctl resources are meant to be read without expanding anchors",
        )
    key = _scalar(key_node)
    if isinstance(key, dt.date | dt.datetime):
        # A holiday key such as `2026-10-01:` reads better as a string.
        return key.isoformat()
    if not isinstance(key, str | int | float | bool) and key is not None:
        raise YamlLoadError("yaml-complex-key", "mapping keys must be plain scalars", _pos(key_node))
    return key if isinstance(key, str) else str(key_node.value)


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
        nodes = _compose_all(text)
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
    try:
        data = _build(nodes[0], (), positions)
    except RecursionError:
        # Recursive aliases (&a [*a]) or absurd nesting.
        raise YamlLoadError(
            "yaml-too-deep", "YAML nesting is too deep (or an alias refers to itself)", Position(1, 1)
        ) from None
    return LoadedDocument(data, positions, text)


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


def position_in_scalar(
    text: str,
    positions: PositionMap,
    path: Path_,
    line_in_value: int = 1,
    needle: str | Sequence[str] | None = None,
) -> Position:
    """Where something inside the string value at `path` sits in the file.

    `line_in_value` is 1-based within the string (what Jinja reports);
    `needle` is the text to find on that line (a variable name), for the
    column; given several, the first one found wins. Block scalars (`|`, `>`) start on the line after their indicator;
    folded and quoted scalars fold lines, so the needle is also searched on
    every line the scalar spans. Falls back to the start of the value.
    """
    start = positions.values.get(tuple(path))
    if start is None:
        return positions.find(path)
    if not text:
        return start
    lines = text.splitlines()
    if not 1 <= start.line <= len(lines):
        return start
    end = positions.ends.get(tuple(path), start)
    last = min(max(end.line, start.line), len(lines))
    indicator = lines[start.line - 1][start.column - 1 : start.column]
    if indicator in ("|", ">"):
        guess = start.line + max(line_in_value, 1)
    else:
        guess = start.line + max(line_in_value, 1) - 1
    guess = min(max(guess, start.line), last)

    def first_col(line_no: int) -> int:
        if line_no == start.line:
            # Skip the opening quote of a quoted scalar.
            return start.column + (1 if indicator in ("'", '"') else 0)
        line = lines[line_no - 1]
        return len(line) - len(line.lstrip(" ")) + 1

    needles = [needle] if isinstance(needle, str) else list(needle or [])
    order = [guess, *(n for n in range(start.line, last + 1) if n != guess)]
    for word in needles:
        if not word:
            continue
        for line_no in order:
            line = lines[line_no - 1]
            from_col = start.column - 1 if line_no == start.line else 0
            idx = line.find(word, from_col)
            if idx >= 0:
                return Position(line_no, idx + 1)
    return Position(guess, first_col(guess))
