"""The hook where SLA clocks (SPEC §4, §10.10) plug into the engine.

The engine calls an `SlaHook` at the three moments SLA clocks care about:
- `on_activate`: a bundle version became live (policies may have changed);
- `on_record_changed`: a record was created, updated or deleted (start, pause,
  resume, stop a clock; re-target it when the matching target changes);
- `on_timer`: a timer of kind `sla` fell due (a warning, breach or
  escalation deadline); `timer.payload` is whatever the hook stored.

The hook works through the same `Runtime` as the rest of the engine: state in
`rt.store` (kv namespace `sla`, timers of kind `sla` with owner
`sla:<object>:<id>:<policy>:<clock>`), the trace via `rt.trace`, `rt.now` as the clock.
`clock_view` answers `flowctl test`'s `sla:` expectations.
Pure clock math lives in `flowctl.engine.sla_clock`.

The real hook is `flowctl.engine.sla_clocks.SlaClocks` (`installed_hook()`,
and the engine's default). `NoSlaClocks` keeps no clocks and says so once per
policy in the trace, so an engine built with it never looks as if clocks ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flowctl.engine.runtime import RecordChange, Runtime
    from flowctl.engine.state import Record, Timer


class SlaHook(Protocol):
    # False while clocks are not evaluated: `flowctl test` then reports `sla` expectations as unsupported.
    supported: bool

    def on_activate(self, rt: Runtime, version: int) -> None: ...

    def on_record_changed(self, rt: Runtime, change: RecordChange, record: Record | None) -> None: ...

    def on_timer(self, rt: Runtime, timer: Timer) -> None: ...

    def clock_view(self, rt: Runtime, record_id: str, clock: str) -> dict[str, Any] | None:
        """A clock of a record as flow tests see it: {clock, due_at, breached, status, ...}; None when absent."""
        ...


class NoSlaClocks:
    """No SLA clocks: reports, per live policy, that its clocks are not evaluated."""

    supported = False

    def on_activate(self, rt: Runtime, version: int) -> None:
        bundle = rt.bundle(version)
        for name, policy in sorted(bundle.sla_policies.items()):
            key = f"{version}:{name}"
            if rt.store.kv_get("sla", key):
                continue
            rt.store.kv_put("sla", key, True)
            rt.trace("error", status="sla_not_evaluated", policy=name, object=policy.object,
                     reason="SLA clocks are not evaluated by this engine version")

    def on_record_changed(self, rt: Runtime, change: RecordChange, record: Record | None) -> None:
        return None

    def on_timer(self, rt: Runtime, timer: Timer) -> None:
        rt.trace("error", status="sla_timer_ignored", timer=timer.id, reason="no SLA hook installed")

    def clock_view(self, rt: Runtime, record_id: str, clock: str) -> dict[str, Any] | None:
        return None


def installed_hook() -> SlaHook:
    """The engine's SLA clocks (`flowctl.engine.sla_clocks.SlaClocks`).

    The simulator and the runner both ask here, so flow tests and production
    run the same clocks.
    """
    # Imported here: sla_clocks builds on the run engine, which imports this module.
    from flowctl.engine.sla_clocks import SlaClocks

    return SlaClocks()
