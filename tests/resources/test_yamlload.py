import pytest

from flowctl.resources.yamlload import YamlLoadError, load_text


def test_positions_of_keys_items_and_values() -> None:
    doc = load_text("kind: flow\nsteps:\n  - id: a\n    action: log\n")
    assert doc.data == {"kind": "flow", "steps": [{"id": "a", "action": "log"}]}
    assert doc.positions.keys[("steps",)].line == 2
    assert doc.positions.values[("steps", 0)] .line == 3
    assert doc.positions.values[("steps", 0, "action")].line == 4
    assert doc.positions.values[("steps", 0, "action")].column == 13
    # An unknown deeper path falls back to its closest known ancestor.
    assert doc.positions.find(("steps", 0, "nope")).line == 3


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        ("a: 1\na: 2\n", "yaml-duplicate-key", 2, 1),
        ("a: [1, 2\n", "yaml-syntax", 2, 1),
        ("", "file-empty", 1, 1),
        ("# only a comment\n", "file-empty", 1, 1),
        ("a:\n\tb: 1\n", "yaml-tab", 2, 1),
        ("a: 1\n---\nb: 2\n", "yaml-multiple-documents", 3, 1),
        ("a\x00b", "file-binary", 1, 1),
    ],
)
def test_load_errors(text: str, code: str, line: int, column: int) -> None:
    with pytest.raises(YamlLoadError) as info:
        load_text(text)
    assert (info.value.code, info.value.position.line, info.value.position.column) == (code, line, column)


def test_scalars_keep_yaml_types() -> None:
    doc = load_text("n: 3\nf: 1.5\nb: true\nd: 2026-10-01\ns: '09:00'\nz: null\n")
    assert doc.data["n"] == 3 and doc.data["f"] == 1.5 and doc.data["b"] is True
    assert str(doc.data["d"]) == "2026-10-01"
    assert doc.data["s"] == "09:00" and doc.data["z"] is None
