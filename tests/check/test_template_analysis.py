"""flowctl.lang.template_analysis: what a template uses, read from jinja2's AST."""

from __future__ import annotations

from flowctl.lang.template_analysis import analyze, analyze_expression
from flowctl.resources.yamlload import Position, load_text, position_in_scalar


def test_attribute_chains_filters_tests_and_calls() -> None:
    a = analyze(
        "Hi {{ record.account.industry | upper }}\n"
        "{% for t in record.tags %}{{ t.name }} {{ loop.index }}{% endfor %}"
        "{{ record['first_name'] }} {{ steps.fetch.output.items[0] }} {{ team('support').manager }}"
        "{% if record.score is divisibleby 3 %}x{% endif %}{% set n = 1 %}{{ n }}"
    )
    assert a.ok
    assert [(v.root, v.attrs, v.lineno) for v in a.variables] == [
        ("record", ("account", "industry"), 1),
        ("record", ("tags",), 2),
        ("record", ("first_name",), 2),
        ("steps", ("fetch", "output", "items"), 2),
        ("record", ("score",), 2),
    ]
    assert [f.name for f in a.filters] == ["upper"]
    assert [t.name for t in a.tests] == ["divisibleby"]
    assert [(c.name, arg) for c, arg in a.calls] == [("team", "support")]


def test_plain_text_is_not_parsed() -> None:
    assert analyze("no braces here").variables == ()


def test_syntax_error_has_the_line_within_the_string() -> None:
    a = analyze("line one\nline two {{ record.x }\n")
    assert a.syntax_error is not None and a.syntax_error.lineno == 2 and not a.ok


def test_expression() -> None:
    a = analyze_expression("record.amount > 1000 and trigger.changed")
    assert [v.dotted for v in a.variables] == ["record.amount", "trigger.changed"]
    assert analyze_expression("record.amount >").syntax_error is not None


def test_position_inside_block_plain_and_quoted_scalars() -> None:
    text = 'a: |\n  one\n  two {{ x.y }}\nb: "q {{ z }}"\nc: plain\n  folded {{ w }}\n'
    doc = load_text(text)
    assert position_in_scalar(text, doc.positions, ("a",), 2, "x.y") == Position(3, 10)
    assert position_in_scalar(text, doc.positions, ("a",), 2) == Position(3, 3)
    assert position_in_scalar(text, doc.positions, ("b",), 1, "z") == Position(4, 10)
    assert position_in_scalar(text, doc.positions, ("c",), 1, "w") == Position(6, 13)
    assert position_in_scalar(text, doc.positions, ("b",), 1, "absent") == Position(4, 5)
