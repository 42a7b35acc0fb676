"""The list of command modules. Each exposes `register(app)`."""

from __future__ import annotations

from collections.abc import Callable

import typer

from flowctl.cli import flowtest as flowtest_cmd
from flowctl.cli import gitops
from flowctl.cli import graph as graph_cmd
from flowctl.cli import init as init_cmd
from flowctl.cli import ops as ops_cmd
from flowctl.cli import runner as runner_cmd
from flowctl.cli import schema as schema_cmd
from flowctl.cli import simulate as simulate_cmd
from flowctl.cli import sla as sla_cmd
from flowctl.cli import validate as validate_cmd

REGISTRARS: list[Callable[[typer.Typer], None]] = [
    gitops.register,
    validate_cmd.register,
    init_cmd.register,
    graph_cmd.register,
    schema_cmd.register,
    simulate_cmd.register,
    flowtest_cmd.register,
    runner_cmd.register,
    ops_cmd.register,
    sla_cmd.register,
]
