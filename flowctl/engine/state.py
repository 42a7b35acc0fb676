"""Durable state: every row the engine reads and writes through a `Store`.

These models are the contract between the engine and the two stores (the
in-memory one the simulator uses, the SQLite one the runner uses). A store
persists each model as it is (`model_dump(mode="json")` round-trips through
`model_validate`), keyed as documented on each class; it never interprets the
content beyond the lookups the `Store` protocol names.

Conventions:
- every datetime is aware UTC;
- ids are allocated by the store (`Store.next_id(prefix)`), so they are
  deterministic in the simulator (`run-1`, `msg-1`, ...) and unique across
  restarts in the runner;
- record field values are JSON values (dates and datetimes are stored as ISO
  strings, see `json_value`), so a record reads back the same from either store.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

UTC = dt.UTC


class StateModel(BaseModel):
    # validate_assignment is off on purpose: the engine mutates these on the hot
    # path and always assigns values of the right type.
    model_config = ConfigDict(extra="forbid")


def json_value(value: Any) -> Any:
    """A record field value as stored: dates/datetimes become ISO strings, containers recurse."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


# --------------------------------------------------------------------------- records


SYSTEM_KEYS = ("id", "created_at", "updated_at")


class Record(StateModel):
    """A CRM record the engine knows. Key: (object, id).

    `fields` holds everything except the system fields `id`, `created_at` and
    `updated_at`, which are attributes (conditions and templates see them as
    fields through `as_fields()`). A deleted record is kept with `deleted=True`
    so a `record_deleted` flow can still read it.
    """

    object: str
    id: str
    fields: dict[str, Any] = Field(default_factory=dict)
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.object, self.id)

    def get(self, name: str) -> Any:
        if name == "id":
            return self.id
        if name == "created_at":
            return json_value(self.created_at)
        if name == "updated_at":
            return json_value(self.updated_at)
        return self.fields.get(name)

    def as_fields(self) -> dict[str, Any]:
        """Every field including the system ones, as conditions and templates see them."""
        return {
            **self.fields,
            "id": self.id,
            "created_at": json_value(self.created_at),
            "updated_at": json_value(self.updated_at),
        }


class TimelineEntry(StateModel):
    """One line on a record's timeline. Key: seq (store-allocated, increasing); listed per (object, record_id)."""

    seq: int
    object: str
    record_id: str
    at: dt.datetime
    text: str
    run_id: str | None = None
    flow: str | None = None
    step: str | None = None


# --------------------------------------------------------------------------- runs

RunStatus = Literal["running", "waiting", "succeeded", "succeeded_compensated", "failed", "cancelled"]
TERMINAL_RUN_STATUSES = frozenset({"succeeded", "succeeded_compensated", "failed", "cancelled"})
OPEN_RUN_STATUSES = frozenset({"running", "waiting"})

# What a run in status `waiting` (or `running` while a message is out) waits for.
WaitKind = Literal["timer", "message", "task", "child_run", "condition", "retry"]


class Waiting(StateModel):
    """What the run's current step is waiting on. Exactly the ids needed to resume it."""

    kind: WaitKind
    timer_id: str | None = None  # wake-up, retry delay or timeout timer
    message_id: str | None = None  # outbox row being delivered (internal `sending` state)
    task_ids: list[str] = Field(default_factory=list)  # approval / human task / compensation
    child_run_id: str | None = None
    until: dt.datetime | None = None


class StepCursor(StateModel):
    """Progress inside the run's current step (survives a restart with the run)."""

    step: str
    attempt: int = 1
    started_at: dt.datetime  # when the step was entered
    attempt_started_at: dt.datetime | None = None  # when the current attempt began (retries)
    # Step-specific progress: approval decisions and sequence position,
    # whatsapp → fallback switch, compensation of a failed step.
    data: dict[str, Any] = Field(default_factory=dict)


class Run(StateModel):
    """One execution of a flow. Key: id. Listed by flow, record, status, parent.

    `cursor` is the current step id (None before the first step and after the
    end); with `version` (the bundle version the run is pinned to) it is all a
    restarted runner needs to continue. `visits` counts entries per step (the
    goto loop guard). `outputs` holds each finished step's output for
    `steps.<id>.output`.
    """

    id: str
    flow: str
    version: int
    object: str | None = None
    record_id: str | None = None
    status: RunStatus = "running"
    outcome: str | None = None
    cursor: StepCursor | None = None
    waiting: Waiting | None = None
    visits: dict[str, int] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    path: list[str] = Field(default_factory=list)  # step ids in the order they were entered
    trigger: dict[str, Any] = Field(default_factory=dict)  # snapshot: type, name, data, changed, before
    event_id: str | None = None
    parent_run_id: str | None = None
    parent_step: str | None = None
    depth: int = 0
    compensated: bool = False
    started_at: dt.datetime
    updated_at: dt.datetime
    ended_at: dt.datetime | None = None
    error: str | None = None
    error_class: str | None = None
    late: bool = False  # started or resumed by a timer that fired after its due time

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_RUN_STATUSES

    @property
    def record_key(self) -> tuple[str, str] | None:
        if self.object is None or self.record_id is None:
            return None
        return (self.object, self.record_id)


StepStatus = Literal["succeeded", "failed", "skipped", "waiting", "retrying", "running"]


class StepAttempt(StateModel):
    """One try of one step. Key: (run_id, step, attempt); a later write for the same key replaces it.

    A step that waits (wait, approval, human task, a message being delivered)
    is written `waiting` (or `running` while its message is out) and rewritten
    with its final status.
    """

    run_id: str
    flow: str
    step: str
    attempt: int = 1
    status: StepStatus
    reason: str | None = None  # e.g. no_consent, when false
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    output: Any = None
    error: str | None = None
    error_class: str | None = None


# --------------------------------------------------------------------------- tasks

TaskKind = Literal["approval", "human_task", "compensation", "manual_dispatch", "task"]
TaskStatus = Literal["not_started", "in_progress", "completed", "cancelled", "expired"]
OPEN_TASK_STATUSES = frozenset({"not_started", "in_progress"})


class Task(StateModel):
    """A task for a person. Key: id. Listed by run, step, status, assignee.

    `kind=task` is an ordinary CRM task made by `create_task` (no run waits on
    it); the other kinds block their run until completed. An approval creates
    one task per approver (`approvers` of that task is the single approver);
    with `mode: sequence` the next one is created when the previous approves.
    """

    id: str
    kind: TaskKind
    run_id: str | None = None
    flow: str | None = None
    step: str | None = None
    subject: str
    description: str | None = None
    assignee: str | None = None
    approvers: list[str] = Field(default_factory=list)
    mode: str | None = None
    status: str = "not_started"
    decision: str | None = None
    priority: str | None = None
    due_at: dt.datetime | None = None
    related_to: str | None = None  # "object/id"
    attachments_required: list[str] = Field(default_factory=list)
    attachments: list[str] = Field(default_factory=list)
    error: str | None = None  # compensation: the failure being compensated
    created_at: dt.datetime
    completed_at: dt.datetime | None = None
    by: str | None = None
    comment: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TASK_STATUSES


# --------------------------------------------------------------------------- outbox

Channel = Literal["email", "sms", "whatsapp", "notification", "webhook"]
MessageStatus = Literal["pending", "sending", "sent", "failed"]


class Message(StateModel):
    """An outbound effect (outbox row). Key: id; unique: idempotency_key (`run_id:step:attempt`).

    The engine writes it `pending`; the shell delivers it and reports with
    `Engine.delivered`, which sets `sent`/`failed`. The shell may set
    `sending` while a delivery is in flight (the runner does, to resolve a
    crash between send and record on restart).
    """

    id: str
    idempotency_key: str
    channel: Channel
    status: MessageStatus = "pending"
    run_id: str | None = None
    flow: str | None = None
    step: str | None = None
    attempt: int = 1
    object: str | None = None
    record_id: str | None = None
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    sender: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None  # email text part, sms body, notification message
    template: str | None = None
    variant: str | None = None
    locale: str | None = None
    attachments: list[str] = Field(default_factory=list)
    whatsapp: dict[str, Any] | None = None  # {name, language, body_params, header_params}
    priority: str | None = None
    # webhook
    url: str | None = None
    method: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    expect_status: list[int] = Field(default_factory=list)
    timeout_seconds: float | None = None
    # delivery outcome
    created_at: dt.datetime
    sent_at: dt.datetime | None = None
    error: str | None = None
    error_class: str | None = None
    provider_id: str | None = None
    response_status: int | None = None
    response_json: Any = None
    response_headers: dict[str, str] = Field(default_factory=dict)


class DeliveryResult(StateModel):
    """What the shell reports for one outbox row.

    `error_class` classifies a failure for retries and the failure report:
    `timeout`, `connection`, `HTTP 503`, `rejected`, ... (§10.6: `HTTP 4xx`
    other than 408/429 is not retried).
    """

    ok: bool
    error_class: str | None = None
    error: str | None = None
    status: int | None = None  # HTTP status (webhooks, HTTP providers)
    json_: Any = Field(None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    provider_id: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- timers

TimerKind = Literal[
    "wake",  # a wait step's end (for / until / calendar)
    "retry",  # the next attempt of a failed step
    "timeout",  # a wait-until-condition, approval or human task reaching its timeout
    "date_trigger",  # a planned date-trigger start for one record
    "schedule",  # the next cron tick of a schedule flow
    "sla",  # reserved for SLA clocks (flowctl.engine.sla)
]
TimerStatus = Literal["pending", "fired", "cancelled"]


class Timer(StateModel):
    """Something to do at `due_at`. Key: id. `seq` (store-allocated, increasing) orders ties.

    `owner` groups timers so they can be cancelled together: a run's timers
    have owner `run:<run_id>`; a date-trigger plan `date:<flow>:<object>:<id>`;
    a schedule `schedule:<flow>`. `Store.due_timers(now)` returns pending timers
    with due_at <= now ordered by (due_at, seq).
    """

    id: str
    seq: int
    kind: TimerKind
    due_at: dt.datetime
    owner: str
    run_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    status: TimerStatus = "pending"
    created_at: dt.datetime
    fired_at: dt.datetime | None = None
    fired_late: bool = False


# --------------------------------------------------------------------------- trace and events

TraceKind = Literal[
    "event",  # an event was ingested
    "trigger",  # a flow's trigger matched and a run started
    "suppressed",  # a trigger matched but did not start a run (conditions, dedupe, reentry, disabled)
    "step",  # a step changed status
    "message",  # an outbox row was delivered or failed
    "timer",  # a timer was set
    "record",  # a record changed
    "task",  # a task was created or completed
    "run",  # a run changed status
    "loop_guard",  # a chain of flows stopped at the depth limit
    "date_plan",  # a date-trigger start was planned, moved or dropped
    "error",  # something the engine could not do (reported, never raised)
    "sla",  # an SLA clock started, paused, resumed, was re-targeted, warned, breached, escalated, stopped, reverted
]


class TraceEntry(StateModel):
    """One line of what happened, in order. Key: seq. What `flowctl simulate` prints."""

    seq: int
    at: dt.datetime
    kind: TraceKind
    run_id: str | None = None
    flow: str | None = None
    step: str | None = None
    status: str | None = None
    attempt: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


EventType = Literal["record_created", "record_updated", "record_deleted", "event"]


class Event(StateModel):
    """An event as the CRM posts it (SPEC §9) and `flowctl events send` reads it.

    `record` holds at least `{"id": ...}`; for record_created/updated the other
    keys are field values (an update may send only what changed). `before`
    holds the previous values of the changed fields; when omitted the engine
    derives it from the stored record.
    """

    type: EventType
    object: str | None = None
    record: dict[str, Any] = Field(default_factory=dict)
    before: dict[str, Any] | None = None
    name: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    occurred_at: dt.datetime | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        # A CRM that sends a naive timestamp means UTC; the engine only handles aware instants.
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def record_id(self) -> str | None:
        rid = self.record.get("id")
        return None if rid is None else str(rid)


class ProcessedEvent(StateModel):
    """An ingested idempotency key. Key: idempotency_key. A repeated key answers `duplicate` with these runs."""

    idempotency_key: str
    event_id: str
    runs: list[str] = Field(default_factory=list)
    at: dt.datetime


class IngestResult(StateModel):
    event_id: str
    runs: list[str] = Field(default_factory=list)
    duplicate: bool = False
    suppressed: list[dict[str, Any]] = Field(default_factory=list)  # {flow, reason}
    trace: list[TraceEntry] = Field(default_factory=list)  # what this call did
