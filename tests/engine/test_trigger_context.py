"""`trigger` in templates always has §10.3's keys: validate accepts `trigger.name` anywhere, so must the engine."""

from __future__ import annotations

from typing import Any

import pytest

from .harness import Harness, flow

LINE = "{{ trigger.type }}|{{ trigger.name }}|{{ trigger.data }}|{{ trigger.changed | join(',') }}|{{ trigger.before }}"
STEPS: list[dict[str, Any]] = [{"id": "show", "action": "log", "message": LINE}]


@pytest.mark.parametrize(
    ("trigger", "act", "expected"),
    [
        ({"type": "record_created"}, lambda h: h.create("c-1"), "record_created|None|{}||{}"),
        ({"type": "record_updated"}, lambda h: (h.create("c-1"), h.update("c-1", tier="gold")),
         "record_updated|None|{}|tier|{'tier': None}"),
        ({"type": "call_flow"}, None, "call_flow|None|{}||{}"),
        ({"type": "event", "name": "survey.submitted"},
         lambda h: (h.create("c-1"), h.event("survey.submitted", "c-1", score=2)),
         "event|survey.submitted|{'score': 2}||{}"),
    ],
    ids=["record_created", "record_updated", "call_flow", "event"],
)
def test_every_trigger_snapshot_has_type_name_data_changed_before(trigger: dict[str, Any], act: Any,
                                                                  expected: str) -> None:
    if trigger["type"] == "call_flow":
        # A child run's trigger is the call itself: it carries neither name, data nor changes.
        parent = flow("parent", [{"id": "call", "call_flow": {"flow": "child", "wait": True}}])
        h = Harness(parent, flow("child", STEPS, trigger={"type": "manual"}))
        h.create("c-1")
        run = h.run_of("child")
    else:
        h = Harness(flow("f", STEPS, trigger=trigger))
        act(h)
        run = h.run_of("f")
    assert run.status == "succeeded", run.error
    assert h.timeline("c-1") == [expected]
