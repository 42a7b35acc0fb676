"""SLA policy checks that need more than the schema.

With a calendar every unit of a target counts business time, so `1d` means
24 business hours, about three working days (§10.10). That surprises
everyone who writes it, hence a warning that asks for hours.
"""

from __future__ import annotations

from collections.abc import Iterator

from flowctl.check.context import CheckContext
from flowctl.check.diagnostics import Diagnostic
from flowctl.lang.durations import Duration


def check_sla(ctx: CheckContext) -> Iterator[Diagnostic]:
    for name, policy in ctx.project.sla_policies.items():
        owner = ctx.owner("sla_policy", name)
        if policy.calendar is not None:
            for i, target in enumerate(policy.targets):
                for clock, text in target.durations.items():
                    try:
                        duration = Duration.parse(text)
                    except ValueError:
                        continue  # reported by the schema pass
                    if duration.is_calendar:
                        hours = duration.days * 24
                        yield ctx.diag(
                            owner,
                            ("targets", i, clock),
                            "sla-target-in-days",
                            f"SLA target {clock}: {text} with calendar '{policy.calendar}' means {hours} business hours",
                            detail="with a calendar every unit counts business time: 1d = 24 business hours",
                            hint=f"write the target in hours (e.g. {duration.days * 8}h for {duration.days} working "
                            f"day{'s' if duration.days != 1 else ''} of 8 hours)",
                            severity="warning",
                        )
        clocks = set(policy.clocks)
        targeted = {c for t in policy.targets for c in t.durations}
        for clock in sorted(clocks - targeted):
            yield ctx.diag(
                owner,
                ("clocks", clock),
                "sla-clock-without-target",
                f"clock '{clock}' has no target duration in any target",
                hint=f"add `{clock}: <duration>` to the targets, or remove the clock",
                severity="warning",
                prefer_key=True,
            )
