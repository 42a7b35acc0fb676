"""runner.yaml `durability`: parsed and checked like every key, and the SQLite setting it stands for is in effect.

`PRAGMA synchronous` reads 2 for FULL and 1 for NORMAL (SQLite docs). The crash behaviour of both
settings is checked end to end in tests/e2e (kill -9 during a send and under load).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowctl.cli.main import app
from flowctl.errors import ConfigError
from flowctl.runner.config import RunnerConfig, load_runner_config
from flowctl.runner.daemon import Runner
from flowctl.store.sqlite import SqliteStore, connect

FULL, NORMAL = 2, 1


def synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


def test_durability_defaults_to_full_and_reads_normal_from_runner_yaml(tmp_path: Path) -> None:
    path = tmp_path / "runner.yaml"
    path.write_text("retention: 30d\n")
    assert load_runner_config(path).durability == "full"
    assert load_runner_config(None).durability == "full"
    path.write_text("retention: 30d\ndurability: normal\n")
    assert load_runner_config(path).durability == "normal"
    path.write_text("durability: full\n")
    assert load_runner_config(path).durability == "full"


@pytest.mark.parametrize(
    ("text", "expected", "hint"),
    [
        ("retention: 30d\ndurability: fast\n", ":2:13: durability: 'fast' is not allowed; expected full, normal", None),
        ("durability: Normal\n", ":1:13: durability: 'Normal' is not allowed", "did you mean 'normal'?"),
        ("durability: 1\n", ":1:13: durability: ", None),
        ("durabilty: normal\n", ":1:1: unknown key 'durabilty'", "did you mean 'durability'?"),
    ],
    ids=["unknown", "capitalised", "number", "misspelt-key"],
)
def test_a_bad_durability_names_runner_yaml_line_and_column(
    tmp_path: Path, text: str, expected: str, hint: str | None
) -> None:
    path = tmp_path / "runner.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_runner_config(path)
    assert str(err.value).startswith(f"{path}{expected}"), str(err.value)
    if hint is not None:
        assert err.value.hint == hint


def test_runner_serve_refuses_a_bad_durability_with_one_message(tmp_path: Path) -> None:
    path = tmp_path / "runner.yaml"
    path.write_text("durability: sometimes\n")
    result = CliRunner().invoke(app, ["runner", "serve", "--config", str(path), "--port", "0"])
    assert result.exit_code == 1
    assert f"{path}:1:13: durability: 'sometimes' is not allowed; expected full, normal" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / ".flowctl").exists()  # refused before anything was created


@pytest.mark.parametrize(("durability", "level"), [("full", FULL), ("normal", NORMAL)])
def test_the_store_sets_the_synchronous_level(tmp_path: Path, durability: str, level: int) -> None:
    store = SqliteStore.open(tmp_path / "runner.db", durability=durability)  # type: ignore[arg-type]
    try:
        assert synchronous(store.conn) == level
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()


def test_every_existing_caller_keeps_full(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "runner.db")
    reader = SqliteStore.open(tmp_path / "runner.db", readonly=True)
    try:
        assert synchronous(store.conn) == FULL and synchronous(reader.conn) == FULL
    finally:
        reader.close()
        store.close()


def test_connect_refuses_an_unknown_durability(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability must be one of full, normal, not 'off'"):
        connect(tmp_path / "runner.db", durability="off")  # type: ignore[arg-type]
    assert not (tmp_path / "runner.db").exists()


@pytest.mark.parametrize(("durability", "level"), [("full", FULL), ("normal", NORMAL)])
def test_the_runner_writes_with_the_configured_level(tmp_path: Path, durability: str, level: int) -> None:
    config = RunnerConfig.model_validate({"durability": durability})
    runner = Runner(config, base_dir=tmp_path, environment={})
    try:
        runner.start()
        assert synchronous(runner.store.conn) == level
        # The writer thread commits on that connection: a write through it is visible to a new reader.
        runner.writer.call(lambda: runner.store.kv_put("probe", "k", durability), label="probe")
        check = sqlite3.connect(tmp_path / ".flowctl" / "runner.db")
        assert check.execute("SELECT value FROM kv WHERE namespace = 'probe'").fetchone() == (f'"{durability}"',)
        check.close()
    finally:
        runner.stop()
