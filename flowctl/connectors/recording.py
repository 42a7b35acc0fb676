"""Recording connectors: what the simulator "sends". Nothing leaves the process.

Every delivery is recorded with its virtual send time. Flow tests script
failures and answers (SPEC §10.11):

- `faults: [{flow, step, error, times}]` fail the first `times` attempts of
  that step in every run, with `error` as the error class (`timeout`,
  `connection`, `HTTP 503`, ...). Outbound steps fail at delivery; other
  action steps fail before they act (`step_fault`, passed to the Engine).
- `stubs: [{flow, step, status, json}]` answer a webhook step; without a stub
  a webhook answers 200 with an empty JSON object.

Secrets are revealed with fake values (`fake-NAME`) in the recorded copy, the
way the runner reveals real ones just before sending.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flowctl.engine.secrets import reveal
from flowctl.engine.state import DeliveryResult, Message
from flowctl.resources.models import Fault, Stub


class _FakeSecrets(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return f"fake-{key}"

    def get(self, key: str, default: Any = None) -> str:
        return self[key]


FAKE_SECRETS = _FakeSecrets()


@dataclass
class Delivery:
    """One delivery attempt of one outbox row."""

    message: Message  # with secrets revealed as fake values
    at: dt.datetime
    ok: bool
    error_class: str | None = None
    status: int | None = None


def _status_of(error_class: str) -> int | None:
    if error_class.startswith("HTTP "):
        try:
            return int(error_class.split()[1])
        except (IndexError, ValueError):
            return None
    return None


class RecordingConnectors:
    def __init__(self, faults: Iterable[Fault] = (), stubs: Iterable[Stub] = ()) -> None:
        self.faults: dict[tuple[str, str], Fault] = {(f.flow, f.step): f for f in faults}
        self.stubs: dict[tuple[str, str], Stub] = {(s.flow, s.step): s for s in stubs}
        self._failed: dict[tuple[str, str, str], int] = defaultdict(int)
        self.deliveries: list[Delivery] = []
        self.provider_seq = 0

    # ------------------------------------------------------------- faults
    def _inject(self, flow: str | None, step: str | None, run_id: str | None) -> str | None:
        if flow is None or step is None:
            return None
        fault = self.faults.get((flow, step))
        if fault is None:
            return None
        key = (flow, step, run_id or "")
        if self._failed[key] >= fault.times:
            return None
        self._failed[key] += 1
        return fault.error

    def step_fault(self, flow: str, step: str, run_id: str, attempt: int) -> str | None:
        """For the Engine: the error class to fail this attempt of a non-outbound step with, or None."""
        return self._inject(flow, step, run_id)

    # ------------------------------------------------------------- delivery
    def deliver(self, message: Message, now: dt.datetime) -> DeliveryResult:
        revealed = message.model_copy(
            update={
                "to": reveal(message.to, FAKE_SECRETS),
                "subject": reveal(message.subject, FAKE_SECRETS),
                "html": reveal(message.html, FAKE_SECRETS),
                "text": reveal(message.text, FAKE_SECRETS),
                "url": reveal(message.url, FAKE_SECRETS),
                "headers": reveal(message.headers, FAKE_SECRETS),
                "body": reveal(message.body, FAKE_SECRETS),
            },
            deep=True,
        )
        injected = self._inject(message.flow, message.step, message.run_id)
        if injected is not None:
            status = _status_of(injected)
            self.deliveries.append(Delivery(revealed, now, ok=False, error_class=injected, status=status))
            return DeliveryResult(ok=False, error_class=injected, error=f"injected fault: {injected}", status=status)
        self.provider_seq += 1
        provider_id = f"sim-{self.provider_seq}"
        if message.channel == "webhook":
            stub = self.stubs.get((message.flow or "", message.step or ""))
            status = stub.status if stub else 200
            body = stub.json_ if stub and stub.json_ is not None else {}
            expected = message.expect_status
            ok = status in expected if expected else 200 <= status < 300
            self.deliveries.append(Delivery(revealed, now, ok=ok, error_class=None if ok else f"HTTP {status}",
                                            status=status))
            if not ok:
                return DeliveryResult(ok=False, error_class=f"HTTP {status}", status=status, json_=body,
                                      error=f"{message.method} {revealed.url} answered {status}")
            return DeliveryResult(ok=True, status=status, json_=body, headers={"content-type": "application/json"},
                                  provider_id=provider_id)
        self.deliveries.append(Delivery(revealed, now, ok=True))
        return DeliveryResult(ok=True, provider_id=provider_id)

    @property
    def sent(self) -> list[Delivery]:
        """Successful deliveries, in send order."""
        return [d for d in self.deliveries if d.ok]
