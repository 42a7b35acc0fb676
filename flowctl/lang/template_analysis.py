"""What a template uses: variables (with their attribute paths), filters, tests, functions.

`validate` checks these against the object schema and the allowed context
(SPEC §1, §10.3) without rendering anything. We parse with the same sandboxed
environment that renders (`flowctl.lang.templates`), so a filter that exists
there exists here, and read jinja2's AST: a `record.account.industry`
expression is a chain of `nodes.Getattr` over `nodes.Name('record')`.

Analyses are cached by source text: a repository repeats the same templated
strings (`{{ record.first_name }}`) many times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import jinja2
from jinja2 import nodes

from flowctl.lang.templates import environment, is_templated


@dataclass(frozen=True)
class VariableUse:
    """`record.account.industry` → root `record`, attrs (`account`, `industry`), on line `lineno` of the string."""

    root: str
    attrs: tuple[str, ...]
    lineno: int

    @property
    def dotted(self) -> str:
        return ".".join((self.root, *self.attrs))


@dataclass(frozen=True)
class NameUse:
    """A filter, test or called function by name, on line `lineno` of the string."""

    name: str
    lineno: int


@dataclass(frozen=True)
class SyntaxProblem:
    message: str
    lineno: int


@dataclass(frozen=True)
class TemplateAnalysis:
    variables: tuple[VariableUse, ...] = ()
    filters: tuple[NameUse, ...] = ()
    tests: tuple[NameUse, ...] = ()
    # Functions called by name, with a constant first argument when there is
    # one (`team('support')` → ("team", "support")).
    calls: tuple[tuple[NameUse, str | None], ...] = ()
    syntax_error: SyntaxProblem | None = None

    @property
    def ok(self) -> bool:
        return self.syntax_error is None


# Names a template defines for itself: loop variables, {% set %}, macro
# parameters, and what Jinja provides inside loops and macros.
_IMPLICIT = frozenset({"loop", "caller", "varargs", "kwargs", "self", "super"})


@dataclass
class _Collector:
    variables: list[VariableUse] = field(default_factory=list)
    filters: list[NameUse] = field(default_factory=list)
    tests: list[NameUse] = field(default_factory=list)
    calls: list[tuple[NameUse, str | None]] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            self._chain(node)
            return
        if isinstance(node, nodes.Name):
            if node.ctx == "load":
                self.variables.append(VariableUse(node.name, (), node.lineno))
            else:
                self.declared.add(node.name)
            return
        if isinstance(node, nodes.Filter) and node.name:
            # Also the filter of a {% filter upper %} block, a child of FilterBlock.
            self.filters.append(NameUse(node.name, node.lineno))
        elif isinstance(node, nodes.Test):
            self.tests.append(NameUse(node.name, node.lineno))
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            if isinstance(node, nodes.Macro):
                self.declared.add(node.name)
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
            first = node.args[0] if node.args else None
            const = first.value if isinstance(first, nodes.Const) and isinstance(first.value, str) else None
            self.calls.append((NameUse(node.node.name, node.lineno), const))
            for child in (*node.args, *node.kwargs):
                self.visit(child)
            if node.dyn_args is not None:
                self.visit(node.dyn_args)
            if node.dyn_kwargs is not None:
                self.visit(node.dyn_kwargs)
            return
        for child in node.iter_child_nodes():
            self.visit(child)

    def _chain(self, node: nodes.Node) -> None:
        attrs: list[str] = []
        current: nodes.Node = node
        dynamic: list[nodes.Node] = []
        while True:
            if isinstance(current, nodes.Getattr):
                attrs.append(current.attr)
                current = current.node
            elif isinstance(current, nodes.Getitem):
                arg = current.arg
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    attrs.append(arg.value)
                else:
                    # record[some_var]: the path stops being static here.
                    attrs.clear()
                    dynamic.append(arg)
                current = current.node
            else:
                break
        attrs.reverse()
        if isinstance(current, nodes.Name) and current.ctx == "load":
            self.variables.append(VariableUse(current.name, tuple(attrs), node.lineno))
        else:
            self.visit(current)
        for d in dynamic:
            self.visit(d)


@lru_cache(maxsize=16384)
def analyze(source: str) -> TemplateAnalysis:
    """Variables, filters, tests and calls of a template string; a syntax error instead when it does not parse."""
    if not is_templated(source):
        return TemplateAnalysis()
    try:
        tree = environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return TemplateAnalysis(syntax_error=SyntaxProblem(exc.message or "syntax error", exc.lineno or 1))
    return _from_tree(tree)


@lru_cache(maxsize=4096)
def analyze_expression(expression: str) -> TemplateAnalysis:
    """Like `analyze`, for a bare expression (`{expr: "record.amount > 1000"}` conditions)."""
    try:
        tree = environment().parse("{{ (" + expression + "\n) }}")
    except jinja2.TemplateSyntaxError as exc:
        return TemplateAnalysis(syntax_error=SyntaxProblem(exc.message or "syntax error", exc.lineno or 1))
    return _from_tree(tree)


def _from_tree(tree: nodes.Template) -> TemplateAnalysis:
    collector = _Collector()
    collector.visit(tree)
    declared = collector.declared | _IMPLICIT
    return TemplateAnalysis(
        variables=tuple(v for v in collector.variables if v.root not in declared),
        filters=tuple(collector.filters),
        tests=tuple(collector.tests),
        calls=tuple(c for c in collector.calls if c[0].name not in declared),
    )


def known_filters() -> frozenset[str]:
    return frozenset(environment().filters)


def known_tests() -> frozenset[str]:
    return frozenset(environment().tests)


def known_globals() -> frozenset[str]:
    """Names the environment itself provides (range, dict, namespace, …)."""
    return frozenset(environment().globals)
