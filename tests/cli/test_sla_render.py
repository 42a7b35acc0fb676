"""How `flowctl sla status` words a clock's state (the runner's JSON is unchanged)."""

from __future__ import annotations

import pytest

from flowctl.cli.sla import _left, _state


@pytest.mark.parametrize(
    ("clock", "state"),
    [
        ({"status": "running"}, "running"),
        ({"status": "running", "breached": True}, "running, breached"),
        ({"status": "paused"}, "paused"),
        ({"status": "stopped", "breached": False}, "stopped, met"),
        ({"status": "stopped", "breached": True}, "stopped, missed"),
        ({"status": "stopped", "breached": True, "reverted_at": "2026-03-02T06:00:00Z"}, "stopped, missed, reverted"),
        ({"status": "cancelled"}, "cancelled"),
    ],
)
def test_state_words(clock: dict[str, object], state: str) -> None:
    assert _state(clock) == state


def test_a_finished_clock_has_no_time_left() -> None:
    assert _left({"status": "stopped"}) == "-"
    assert _left({"status": "cancelled"}) == "-"
    assert _left({"status": "running", "remaining_seconds": 5400}).endswith("left")
