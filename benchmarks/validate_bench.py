"""Benchmark `flowctl validate` on a large generated repository.

Generates 1,000 flows (8 steps each, with entry conditions, step conditions,
nested branches and templated strings) and 200 message templates in a temp
dir, then validates it in-process and as a `flowctl validate` subprocess, and
prints seconds and files/s. Target: under 2 s.

    .venv/bin/python benchmarks/validate_bench.py [--flows 1000] [--templates 200] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flowctl.check.validate import validate_path

CONTACT = """\
kind: object
name: contact
fields:
  first_name: {type: string, required: true}
  last_name: {type: string}
  email: {type: email}
  phone: {type: phone}
  tier: {type: enum, values: [standard, premium, gold]}
  stage: {type: enum, values: [lead, customer, churned]}
  score: {type: number}
  owner: {type: ref, object: user}
  account: {type: ref, object: account}
  email_opt_out: {type: boolean}
  sms_opt_in: {type: boolean}
  last_contacted_at: {type: datetime}
  renewal_date: {type: date}
  segment_{i}: {type: string}
consent:
  email: {field: email_opt_out, op: ne, value: true}
  sms: {field: sms_opt_in, op: eq, value: true}
"""

ACCOUNT = """\
kind: object
name: account
fields:
  name: {type: string}
  industry: {type: enum, values: [tech, retail, finance]}
  employees: {type: integer}
"""

TEAM = """\
kind: team
name: team-{i}
manager: manager.{i}
members:
  - {{user: agent.{i}.a, skills: [billing]}}
  - {{user: agent.{i}.b, skills: [api]}}
"""

TEMPLATE = """\
kind: template
name: template_{i}
channel: email
object: contact
subject: "Hello {{{{ record.first_name }}}}, news #{i} for {{{{ record.account.name }}}}"
html: |
  <p>Hi {{{{ record.first_name }}}} {{{{ record.last_name | default('') }}}},</p>
  <p>Your tier is {{{{ record.tier | upper }}}} and your score {{{{ record.score }}}} (message {i}).</p>
  {{% if record.account.industry == 'tech' %}}<p>Tech news for {{{{ record.account.name }}}}.</p>{{% endif %}}
text: "Hi {{{{ record.first_name }}}}, message {i} for {{{{ record.owner.name }}}}"
"""

FLOW = """\
kind: flow
name: flow-{i}
description: generated flow {i}
object: contact
trigger: {trigger}
conditions:
  all:
    - {{field: email, op: is_set}}
    - any:
        - {{field: tier, op: in, value: [premium, gold]}}
        - {{field: score, op: gt, value: {i}}}
        - {{field: account.industry, op: eq, value: tech}}
steps:
  - id: welcome
    action: send_email
    to: "{{{{ record.email }}}}"
    template: template_{t}
  - id: assign
    action: assign_record
    strategy: round_robin
    team: team-{team}
  - id: task
    action: create_task
    subject: "Call {{{{ record.first_name }}}} {{{{ record.last_name }}}} about offer {i}"
    assignee: "{{{{ record.owner.id }}}}"
    due: 2d
  - id: wait
    wait: {{for: 3d}}
  - id: check
    if:
      all:
        - {{field: last_contacted_at, op: more_than_ago, value: 3d}}
        - {{field: stage, op: ne, value: churned}}
    then:
      - id: nudge
        action: notify
        to: "{{{{ record.owner.id }}}}"
        message: "{{{{ record.first_name }}}} (task {{{{ steps.task.output }}}}) is quiet since {{{{ record.last_contacted_at }}}}"
    else:
      - id: note
        action: log
        message: "contacted recently, segment {{{{ record.segment_{seg} }}}}"
  - id: mark
    action: update_record
    set: {{segment_{seg}: "{{{{ run.flow }}}}"}}
  - id: hook
    action: webhook
    url: "https://crm.example/hooks/{{{{ record.id }}}}"
    body: {{flow: "{{{{ run.flow }}}}", score: "{{{{ record.score }}}}"}}
"""


def generate(root: Path, flows: int, templates: int) -> int:
    (root / "flows" / "teams").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "schemas" / "objects").mkdir(parents=True)
    (root / "flowctl.yaml").write_text("project: bench\n")
    (root / "schemas/objects/contact.yaml").write_text(
        CONTACT.replace(
            "  segment_{i}: {type: string}\n",
            "".join(f"  segment_{i}: {{type: string}}\n" for i in range(10)),
        )
    )
    (root / "schemas/objects/account.yaml").write_text(ACCOUNT)
    for i in range(10):
        (root / f"flows/teams/team-{i}.yaml").write_text(TEAM.format(i=i))
    for i in range(templates):
        (root / f"templates/template_{i}.yaml").write_text(TEMPLATE.format(i=i))
    triggers = ["{type: record_created}", "{type: date, field: renewal_date, offset: -30d}", "{type: manual}"]
    for i in range(flows):
        text = FLOW.format(i=i, t=i % templates, team=i % 10, seg=i % 10, trigger=triggers[i % len(triggers)])
        (root / f"flows/flow-{i}.yaml").write_text(text)
    return flows + templates + 10 + 2 + 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--templates", type=int, default=200)
    parser.add_argument(
        "--profile", action="store_true", help="print the top of a cProfile of the in-process run"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="flowctl-bench-"))
    try:
        n = generate(tmp, args.flows, args.templates)
        print(f"generated {n} files ({args.flows} flows, {args.templates} templates) in {tmp}")

        start = time.perf_counter()
        report = validate_path(tmp)
        inproc = time.perf_counter() - start
        assert report.error_count == 0, [d.summary for d in report.diagnostics[:5]]
        print(
            f"in-process:  {inproc:.2f} s  {len(report.files) / inproc:,.0f} files/s  "
            f"({len(report.files)} files, {report.error_count} errors, {report.warning_count} warnings)"
        )

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            validate_path(tmp)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)

        flowctl = Path(sys.executable).with_name("flowctl")
        cmd = [str(flowctl), "validate", str(tmp), "--format", "json"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        sub = time.perf_counter() - start
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        print(f"subprocess:  {sub:.2f} s  {n / sub:,.0f} files/s  ({status})")
        target = 2.0
        print(f"target {target:.0f} s: {'met' if max(inproc, sub) < target else 'MISSED'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
