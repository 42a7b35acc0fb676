"""Typed resources: one pydantic model per YAML kind (SPEC §1–7).

Every model forbids unknown keys. Structural rules live here (types, required
keys, duration/cron/time-zone syntax); rules that need other resources
(references, field types, graphs) live in `flowctl.check`.

Steps are a tagged union picked by the key that makes a step what it is:
`action` (then its value), `wait`, `if`, `switch`, `goto`, `call_flow`, `stop`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from flowctl.lang.durations import DURATION_PATTERN, Duration, is_timezone

NAME_PATTERN = r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$"
_NAME_RE = re.compile(NAME_PATTERN)
HHMM_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"


# --------------------------------------------------------------------------- value types


def _check_duration(value: str) -> str:
    Duration.parse(value)
    return value


def _check_timezone(value: str) -> str:
    if not is_timezone(value):
        raise ValueError(f"unknown time zone '{value}'; use an IANA name such as Europe/Berlin or UTC")
    return value


def _check_cron(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"invalid cron expression '{value}': {exc}") from None
    return value


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"invalid name '{value}': use kebab-case or snake_case (lowercase letters, digits, - or _)")
    return value


DurationStr = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, description="30s, 15m, 2h, 3d, 1w; negative offsets -7d"),
    AfterValidator(_check_duration),
]
TimeZone = Annotated[str, Field(description="IANA time zone, e.g. Europe/Berlin"), AfterValidator(_check_timezone)]
Cron = Annotated[str, Field(description="five-field crontab expression"), AfterValidator(_check_cron)]
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="kebab-case or snake_case"), AfterValidator(_check_name)]
HHMM = Annotated[str, Field(pattern=HHMM_PATTERN, description="local time HH:MM")]
StrOrList = str | list[str]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=False)


class ResourceBase(StrictModel):
    name: Name
    description: str | None = None


# --------------------------------------------------------------------------- conditions

Operator = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains", "starts_with",
    "ends_with", "matches", "is_set", "is_empty", "changed", "changed_from", "changed_to", "within_last",
    "more_than_ago", "before", "after", "between",
]  # fmt: skip
OPERATORS: tuple[str, ...] = Operator.__args__  # type: ignore[attr-defined]
# Operators that take no value.
UNARY_OPERATORS = frozenset({"is_set", "is_empty", "changed"})
CHANGE_OPERATORS = frozenset({"changed", "changed_from", "changed_to"})


class LeafCondition(StrictModel):
    field: str = Field(description="a field of the flow's object; dotted paths follow ref fields (account.industry)")
    op: Operator
    value: Any = None

    @model_validator(mode="after")
    def _value_matches_op(self) -> LeafCondition:
        given = "value" in self.model_fields_set
        if self.op in UNARY_OPERATORS and given and self.value is not None:
            raise ValueError(f"operator '{self.op}' takes no value")
        if self.op not in UNARY_OPERATORS and not given:
            raise ValueError(f"operator '{self.op}' needs a value")
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"operator '{self.op}' needs a list value, e.g. [a, b]")
        if self.op == "between" and not (isinstance(self.value, list) and len(self.value) == 2):
            raise ValueError("operator 'between' needs a list of two values [low, high]")
        if self.op in ("within_last", "more_than_ago"):
            if not isinstance(self.value, str):
                raise ValueError(f"operator '{self.op}' needs a duration such as 7d")
            _check_duration(self.value)
        return self


class AllCondition(StrictModel):
    all: list[Condition] = Field(min_length=1)


class AnyCondition(StrictModel):
    any: list[Condition] = Field(min_length=1)


class NotCondition(StrictModel):
    not_: Condition = Field(alias="not")


class ExprCondition(StrictModel):
    expr: str = Field(description="a Jinja2 expression, e.g. record.amount > 1000")


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return {
            LeafCondition: "leaf", AllCondition: "all", AnyCondition: "any", NotCondition: "not", ExprCondition: "expr",
        }.get(type(value))  # fmt: skip
    if not isinstance(value, dict):
        return None
    for key in ("all", "any", "not", "expr"):
        if key in value:
            return key
    if "field" in value or "op" in value:
        return "leaf"
    return None


Condition = Annotated[
    Annotated[LeafCondition, Tag("leaf")]
    | Annotated[AllCondition, Tag("all")]
    | Annotated[AnyCondition, Tag("any")]
    | Annotated[NotCondition, Tag("not")]
    | Annotated[ExprCondition, Tag("expr")],
    Discriminator(
        _condition_tag,
        custom_error_type="invalid_condition",
        custom_error_message="a condition is {field, op, value}, {all: [...]}, {any: [...]}, {not: ...} or {expr: ...}",
    ),
]


# --------------------------------------------------------------------------- steps


class Retry(StrictModel):
    attempts: int = Field(1, ge=1, le=100, description="every try, the first included")
    delay: DurationStr = "1m"
    backoff: Literal["fixed", "exponential"] = "fixed"
    max_delay: DurationStr | None = None


class GotoRef(StrictModel):
    goto: str


OnFailure = Literal["fail", "continue", "compensate"] | GotoRef


class StepBase(StrictModel):
    id: str | None = Field(None, description="unique within the flow; required in flows")
    description: str | None = None
    when: Condition | None = Field(None, description="the step is skipped when this is false")
    retry: Retry | None = None
    timeout: DurationStr | None = None
    on_failure: OnFailure = "fail"
    timeline: str | None = Field(None, description="replaces the default timeline line")


class Variant(StrictModel):
    template: str
    weight: float = Field(1, gt=0)


class SendEmail(StepBase):
    action: Literal["send_email"]
    to: StrOrList
    cc: StrOrList | None = None
    bcc: StrOrList | None = None
    from_: str | None = Field(None, alias="from")
    template: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    attachments: list[str] | None = None
    variants: list[Variant] | None = None

    @model_validator(mode="after")
    def _content(self) -> SendEmail:
        sources = sum(x is not None for x in (self.template, self.variants)) + (self.subject is not None)
        if sources == 0:
            raise ValueError("send_email needs `template`, `variants`, or `subject` with `html`/`text`")
        if sources > 1:
            raise ValueError("send_email takes one of `template`, `variants`, or `subject`+`html`/`text`")
        if self.subject is not None and self.html is None and self.text is None:
            raise ValueError("send_email with `subject` needs `html` or `text`")
        return self


class SendSms(StepBase):
    action: Literal["send_sms"]
    to: str
    template: str | None = None
    body: str | None = None
    sender_id: str | None = None

    @model_validator(mode="after")
    def _content(self) -> SendSms:
        if (self.template is None) == (self.body is None):
            raise ValueError("send_sms needs exactly one of `template` or `body`")
        return self


class SendWhatsapp(StepBase):
    action: Literal["send_whatsapp"]
    to: str
    template: str
    fallback: Step | None = Field(None, description="a step (e.g. send_sms) run when WhatsApp fails or there is no opt-in")


class CreateTask(StepBase):
    action: Literal["create_task"]
    subject: str
    description: str | None = None
    assignee: str | None = None
    due: str | None = Field(None, description="a duration from now (2d) or a templated timestamp")
    priority: str | None = None
    status: str = "not_started"
    related_to: str | None = None
    attachments_required: list[str] | None = None


class CreateEvent(StepBase):
    action: Literal["create_event"]
    subject: str
    start: str = Field(description="a duration from now (1d) or a templated timestamp")
    end: str | None = None
    duration: DurationStr | None = None
    location: str | None = None
    attendees: list[str] | None = None


class UpdateRecord(StepBase):
    action: Literal["update_record"]
    record: str | None = Field(None, description="default the triggering record; or a ref field such as account")
    set: dict[str, Any] = Field(min_length=1)


class CreateRecord(StepBase):
    action: Literal["create_record"]
    object: str
    values: dict[str, Any] = Field(default_factory=dict)


class AssignRecord(StepBase):
    action: Literal["assign_record"]
    strategy: Literal["fixed", "round_robin", "least_loaded", "skills"]
    team: str | None = None
    user: str | None = None
    skills_from: str | None = Field(None, description="field holding the skills (tags) the assignee needs")
    language_from: str | None = Field(None, description="field holding the language the assignee must speak")
    field: str = "owner"
    fallback: str | None = Field(
        None, description="a user id, or `manual_dispatch` to create a dispatch task for the team manager"
    )

    @model_validator(mode="after")
    def _needs(self) -> AssignRecord:
        if self.strategy == "fixed" and not self.user:
            raise ValueError("strategy fixed needs `user`")
        if self.strategy != "fixed" and not self.team:
            raise ValueError(f"strategy {self.strategy} needs `team`")
        if self.strategy == "skills" and not self.skills_from:
            raise ValueError("strategy skills needs `skills_from`")
        return self


class MergeDuplicates(StepBase):
    action: Literal["merge_duplicates"]
    match: list[str] = Field(min_length=1)
    window: DurationStr
    mark_after: int | None = Field(None, ge=2)
    mark: dict[str, Any] | None = None


class Notify(StepBase):
    action: Literal["notify"]
    to: StrOrList
    message: str
    priority: str | None = None


class Webhook(StepBase):
    action: Literal["webhook"]
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] | None = None
    body: Any = None
    expect_status: int | list[int] | None = None


class Log(StepBase):
    action: Literal["log"]
    message: str


class ApproverEntry(StrictModel):
    """One approver of an approval step with a task of its own (PowerX C-1: price approval, legal review).

    Every key but `user` defaults to the step's.
    """

    user: str = Field(min_length=1, description="the approver's user id (templated, one user)")
    title: str | None = Field(None, description="this task's title (templated); default the step's `title`")
    attachments_required: list[str] | None = Field(None, description="default the step's")
    instructions: str | None = Field(None, description="default the step's")


class Approval(StepBase):
    action: Literal["approval"]
    title: str | None = Field(
        None, description="the task title (templated); may be left out when every approver entry has its own"
    )
    approvers: str | list[str | ApproverEntry] = Field(
        description="user ids, or entries {user, title, attachments_required, instructions}: one task each"
    )
    mode: Literal["any", "all", "sequence"] = "any"
    instructions: str | None = None
    attachments_required: list[str] | None = None
    on_timeout: Literal["reject"] | list[Step] | None = None
    on_reject: list[Step] | None = None

    @model_validator(mode="after")
    def _titled(self) -> Approval:
        if self.title is None and not (
            isinstance(self.approvers, list) and self.approvers
            and all(isinstance(a, ApproverEntry) and a.title is not None for a in self.approvers)
        ):  # fmt: skip
            raise ValueError("approval needs `title` (it may be left out only when every approver entry has one)")
        return self

    @property
    def has_entries(self) -> bool:
        """Approvers written as entries: each task has its own title and list, and the output has `chain`."""
        return isinstance(self.approvers, list) and any(isinstance(a, ApproverEntry) for a in self.approvers)


class HumanTask(StepBase):
    action: Literal["human_task"]
    title: str
    assignee: str
    instructions: str | None = None
    attachments_required: list[str] | None = None


class WaitSpec(StrictModel):
    for_: DurationStr | None = Field(None, alias="for")
    until: str | None = Field(None, description='a templated timestamp, e.g. "{{ record.renewal_date }}T09:00"')
    until_condition: Condition | None = None
    calendar: str | None = Field(None, description="wait until the next business hour of this calendar")
    timeout: DurationStr | None = None

    @model_validator(mode="after")
    def _one(self) -> WaitSpec:
        given = [k for k in ("for_", "until", "until_condition", "calendar") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("wait takes exactly one of `for`, `until`, `until_condition`, `calendar`")
        if self.timeout is not None and self.until_condition is None:
            raise ValueError("wait `timeout` only applies to `until_condition`")
        return self


class WaitStep(StepBase):
    wait: WaitSpec


class IfStep(StepBase):
    if_: Condition = Field(alias="if")
    then: list[Step] = Field(default_factory=list)
    else_: list[Step] = Field(default_factory=list, alias="else")


class SwitchCase(StrictModel):
    when: Condition
    steps: list[Step]


class SwitchSpec(StrictModel):
    cases: list[SwitchCase] = Field(min_length=1)
    default: list[Step] = Field(default_factory=list)


class SwitchStep(StepBase):
    switch: SwitchSpec


class GotoStep(StepBase):
    goto: str


class CallFlowSpec(StrictModel):
    flow: str
    wait: bool = False


class CallFlowStep(StepBase):
    call_flow: CallFlowSpec


class StopSpec(StrictModel):
    status: Literal["succeeded", "failed"] = "succeeded"
    reason: str | None = None


class StopStep(StepBase):
    stop: StopSpec


ACTION_MODELS: dict[str, type[StepBase]] = {
    "send_email": SendEmail,
    "send_sms": SendSms,
    "send_whatsapp": SendWhatsapp,
    "create_task": CreateTask,
    "create_event": CreateEvent,
    "update_record": UpdateRecord,
    "create_record": CreateRecord,
    "assign_record": AssignRecord,
    "merge_duplicates": MergeDuplicates,
    "notify": Notify,
    "webhook": Webhook,
    "log": Log,
    "approval": Approval,
    "human_task": HumanTask,
}
CONTROL_MODELS: dict[str, type[StepBase]] = {
    "wait": WaitStep,
    "if": IfStep,
    "switch": SwitchStep,
    "goto": GotoStep,
    "call_flow": CallFlowStep,
    "stop": StopStep,
}
MESSAGE_ACTIONS = frozenset({"send_email", "send_sms", "send_whatsapp"})


def step_kind(value: Any) -> str | None:
    """The tag of a step: its action name, or the control key (wait, if, …)."""
    if isinstance(value, BaseModel):
        action = getattr(value, "action", None)
        if isinstance(action, str):
            return action
        for key, model in CONTROL_MODELS.items():
            if isinstance(value, model):
                return key
        return None
    if not isinstance(value, dict):
        return None
    if "action" in value:
        action = value["action"]
        return action if isinstance(action, str) and action in ACTION_MODELS else None
    for key in CONTROL_MODELS:
        if key in value:
            return key
    return None


Step = Annotated[
    Annotated[SendEmail, Tag("send_email")]
    | Annotated[SendSms, Tag("send_sms")]
    | Annotated[SendWhatsapp, Tag("send_whatsapp")]
    | Annotated[CreateTask, Tag("create_task")]
    | Annotated[CreateEvent, Tag("create_event")]
    | Annotated[UpdateRecord, Tag("update_record")]
    | Annotated[CreateRecord, Tag("create_record")]
    | Annotated[AssignRecord, Tag("assign_record")]
    | Annotated[MergeDuplicates, Tag("merge_duplicates")]
    | Annotated[Notify, Tag("notify")]
    | Annotated[Webhook, Tag("webhook")]
    | Annotated[Log, Tag("log")]
    | Annotated[Approval, Tag("approval")]
    | Annotated[HumanTask, Tag("human_task")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[IfStep, Tag("if")]
    | Annotated[SwitchStep, Tag("switch")]
    | Annotated[GotoStep, Tag("goto")]
    | Annotated[CallFlowStep, Tag("call_flow")]
    | Annotated[StopStep, Tag("stop")],
    Discriminator(
        step_kind,
        custom_error_type="invalid_step",
        custom_error_message=(
            "a step needs `action` (one of " + ", ".join(ACTION_MODELS) + ") or one of "
            "`wait`, `if`, `switch`, `goto`, `call_flow`, `stop`"
        ),
    ),
]


def child_step_lists(step: Any) -> list[tuple[str, list[Any]]]:
    """The nested step lists of a step, each with the YAML path segment(s) that lead to it."""
    out: list[tuple[str, list[Any]]] = []
    if isinstance(step, IfStep):
        out += [("then", step.then), ("else", step.else_)]
    elif isinstance(step, SwitchStep):
        out += [(f"switch.cases.{i}.steps", c.steps) for i, c in enumerate(step.switch.cases)]
        out.append(("switch.default", step.switch.default))
    elif isinstance(step, Approval):
        if step.on_reject:
            out.append(("on_reject", step.on_reject))
        if isinstance(step.on_timeout, list):
            out.append(("on_timeout", step.on_timeout))
    elif isinstance(step, SendWhatsapp) and step.fallback is not None:
        out.append(("fallback", [step.fallback]))
    return out


# --------------------------------------------------------------------------- triggers


class RecordCreatedTrigger(StrictModel):
    type: Literal["record_created"]


class RecordUpdatedTrigger(StrictModel):
    type: Literal["record_updated"]
    fields: list[str] | None = None
    when_conditions_become_true: bool = False


class FieldChangedTrigger(StrictModel):
    type: Literal["field_changed"]
    field: str
    from_: Any = Field(None, alias="from")
    to: Any = None

    @property
    def has_from(self) -> bool:
        return "from_" in self.model_fields_set

    @property
    def has_to(self) -> bool:
        return "to" in self.model_fields_set


class RecordDeletedTrigger(StrictModel):
    type: Literal["record_deleted"]


class DateTrigger(StrictModel):
    type: Literal["date"]
    field: str
    offset: DurationStr | None = None
    at: HHMM | None = None
    timezone: TimeZone | None = None
    repeat: Literal["yearly"] | None = None


class ScheduleTrigger(StrictModel):
    type: Literal["schedule"]
    cron: Cron
    timezone: TimeZone | None = None
    conditions: Condition | None = None


class EventTrigger(StrictModel):
    type: Literal["event"]
    name: str = Field(min_length=1)


class ManualTrigger(StrictModel):
    type: Literal["manual"]


Trigger = Annotated[
    RecordCreatedTrigger
    | RecordUpdatedTrigger
    | FieldChangedTrigger
    | RecordDeletedTrigger
    | DateTrigger
    | ScheduleTrigger
    | EventTrigger
    | ManualTrigger,
    Field(discriminator="type"),
]
RECORD_TRIGGERS = frozenset({"record_created", "record_updated", "field_changed", "record_deleted", "date"})


# --------------------------------------------------------------------------- flow


def _check_reentry(value: str) -> str:
    if value not in ("never", "always"):
        _check_duration(value)
    return value


class Flow(ResourceBase):
    kind: Literal["flow"]
    object: Name | None = Field(None, description="the CRM object the flow runs on (optional for schedule/event/manual)")
    enabled: bool = True
    timezone: TimeZone = "UTC"
    trigger: Trigger
    conditions: Condition | None = None
    reentry: Annotated[str, AfterValidator(_check_reentry)] = Field(
        "always", description="never | always | a duration: minimum time between two runs for one record"
    )
    dedupe: DurationStr | None = None
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _object_needed(self) -> Flow:
        if self.object is None and self.trigger.type in RECORD_TRIGGERS:
            raise ValueError(f"a flow with a {self.trigger.type} trigger needs `object`")
        return self


# --------------------------------------------------------------------------- objects

FieldType = Literal[
    "string", "text", "number", "integer", "boolean", "date", "datetime", "email", "phone", "url", "enum", "list", "ref",
]  # fmt: skip


class FieldDef(StrictModel):
    type: FieldType
    required: bool = False
    description: str | None = None
    values: list[str] | None = Field(None, description="allowed values of an enum")
    object: str | None = Field(None, description="the object a ref points to")
    items: FieldType | None = Field(None, description="the type of a list's items")
    default: Any = None

    @model_validator(mode="after")
    def _type_params(self) -> FieldDef:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum field needs `values`")
        if self.type != "enum" and self.values is not None:
            raise ValueError("`values` only applies to enum fields")
        if self.type == "ref" and not self.object:
            raise ValueError("a ref field needs `object`")
        if self.type != "ref" and self.object is not None:
            raise ValueError("`object` only applies to ref fields")
        return self


class ConsentRule(StrictModel):
    field: str
    op: Operator
    value: Any = None


class ObjectSchema(ResourceBase):
    kind: Literal["object"]
    fields: dict[str, FieldDef] = Field(default_factory=dict)
    consent: dict[Literal["email", "sms", "whatsapp"], ConsentRule] = Field(default_factory=dict)


# --------------------------------------------------------------------------- SLA and calendars


class Holiday(StrictModel):
    date: dt.date
    name: str | None = None


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL_RE = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_day_spec(spec: str) -> list[int]:
    """`mon-fri`, `sat`, `mon,wed,fri` → weekday numbers (Monday = 0)."""
    days: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            if a not in _DAYS or b not in _DAYS:
                raise ValueError(f"unknown day range '{part}'; use mon, tue, wed, thu, fri, sat, sun")
            i, j = _DAYS.index(a), _DAYS.index(b)
            days += list(range(i, j + 1)) if i <= j else [*range(i, 7), *range(0, j + 1)]
        else:
            if part not in _DAYS:
                raise ValueError(f"unknown day '{part}'; use mon, tue, wed, thu, fri, sat, sun")
            days.append(_DAYS.index(part))
    return days


def parse_interval(text: str) -> tuple[int, int]:
    """`09:00-12:00` → minutes from midnight (start, end); `24:00` allowed as an end."""
    m = _INTERVAL_RE.match(text)
    if not m:
        raise ValueError(f"invalid interval '{text}'; write HH:MM-HH:MM, e.g. 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= end or end > 24 * 60 or start >= 24 * 60:
        raise ValueError(f"invalid interval '{text}': the end must be after the start, within one day")
    return start, end


class Calendar(ResourceBase):
    kind: Literal["calendar"]
    timezone: TimeZone
    weekly: dict[str, list[str]] = Field(min_length=1)
    holidays: list[dt.date | Holiday] = Field(default_factory=list)
    holidays_country: str | None = Field(None, description="ISO country code for public holidays, e.g. US")
    holidays_subdivision: str | None = None

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[int, str] = {}
        for spec, intervals in value.items():
            for day in parse_day_spec(spec):
                if day in seen:
                    raise ValueError(f"day {_DAYS[day]} is listed twice ('{seen[day]}' and '{spec}')")
                seen[day] = spec
            spans = sorted(parse_interval(i) for i in intervals)
            for (_, e1), (s2, _) in itertools.pairwise(spans):
                if s2 < e1:
                    raise ValueError(f"intervals of '{spec}' overlap")
        return value

    # Field validators (not a model validator) so that validate points at the offending key's line.
    @field_validator("holidays_country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value:
            import holidays

            try:
                holidays.country_holidays(value)
            except NotImplementedError:
                raise ValueError(f"unknown holidays_country '{value}' (an ISO code such as US, DE, CN)") from None
        return value

    @field_validator("holidays_subdivision")
    @classmethod
    def _subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("holidays_country")
        if value and country:
            import holidays

            try:
                holidays.country_holidays(country, subdiv=value)
            except NotImplementedError:
                raise ValueError(f"unknown holidays_subdivision '{value}' of {country}") from None
        return value


class SlaTarget(StrictModel):
    """`when` (or `default: true`) plus one duration per clock name, e.g. `first_response: 1h`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    when: Condition | None = None
    default: bool = False

    @model_validator(mode="after")
    def _durations(self) -> SlaTarget:
        if (self.when is None) == (not self.default):
            raise ValueError("a target needs either `when` or `default: true`")
        extras = self.model_extra or {}
        if not extras:
            raise ValueError("a target needs at least one clock duration, e.g. first_response: 1h")
        for clock, value in extras.items():
            if not isinstance(value, str):
                raise ValueError(f"target for clock '{clock}' must be a duration such as 2h")
            _check_duration(value)
        return self

    @property
    def durations(self) -> dict[str, str]:
        return dict(self.model_extra or {})


class SlaClockSpec(StrictModel):
    start_when: Condition | None = None
    pause_when: Condition | None = None
    stop_when: Condition | None = None


class Escalation(StrictModel):
    after: DurationStr = Field(description="time after the breach")
    actions: list[Step] = Field(min_length=1)


_PERCENT_RE = re.compile(r"^(\d{1,2}(?:\.\d+)?)%$")


def _check_warn(value: str) -> str:
    if _PERCENT_RE.match(value):
        return value
    _check_duration(value)
    return value


class SlaPolicy(ResourceBase):
    kind: Literal["sla_policy"]
    object: Name
    calendar: str | None = None
    applies_when: Condition | None = None
    targets: list[SlaTarget] = Field(min_length=1)
    clocks: dict[str, SlaClockSpec] = Field(default_factory=dict)
    warn_before: Annotated[str, AfterValidator(_check_warn)] | None = Field(None, description="a duration or a percentage such as 80%")
    on_warning: list[Step] = Field(default_factory=list)
    on_breach: list[Step] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)

    @property
    def clock_names(self) -> list[str]:
        names: list[str] = list(self.clocks)
        for t in self.targets:
            for n in t.durations:
                if n not in names:
                    names.append(n)
        return names


# --------------------------------------------------------------------------- templates and teams


class TemplateLocale(StrictModel):
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    body: str | None = None


class WhatsappSpec(StrictModel):
    name: str
    language: str = "en_US"
    body_params: list[str] = Field(default_factory=list)
    header_params: list[str] = Field(default_factory=list)


class Template(ResourceBase):
    kind: Literal["template"]
    channel: Literal["email", "sms", "whatsapp", "notification"]
    object: Name | None = Field(None, description="the object whose fields `record` has (checked at validate time)")
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    body: str | None = None
    whatsapp: WhatsappSpec | None = None
    locales: dict[str, TemplateLocale] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _channel_fields(self) -> Template:
        if self.channel == "email":
            if not self.subject:
                raise ValueError("an email template needs `subject`")
            if self.html is None and self.text is None:
                raise ValueError("an email template needs `html` or `text`")
        elif self.channel in ("sms", "notification"):
            if self.body is None and self.text is None:
                raise ValueError(f"an {self.channel} template needs `body`")
        elif self.channel == "whatsapp" and self.whatsapp is None:
            raise ValueError("a whatsapp template needs `whatsapp: {name, language, body_params}`")
        return self


class TeamMember(StrictModel):
    user: str
    skills: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    capacity: int | None = Field(None, ge=0)


class Team(ResourceBase):
    kind: Literal["team"]
    manager: str | None = None
    members: list[TeamMember] = Field(min_length=1)


# --------------------------------------------------------------------------- flow tests

TestEventType = Literal[
    "record_created", "record_updated", "record_deleted", "event", "task_completed", "manual",
]  # fmt: skip


class TestEvent(StrictModel):
    __test__ = False  # not a pytest class

    at: str | dt.datetime = Field(description="an offset from start_at (3h) or an absolute timestamp")
    type: TestEventType
    object: str | None = None
    id: str | None = None
    record: str | dict[str, Any] | None = None
    set: dict[str, Any] | None = None
    name: str | None = None
    data: dict[str, Any] | None = None
    flow: str | None = None
    task: str | None = None
    decision: Literal["approved", "rejected", "done"] | None = None
    by: str | None = None
    comment: str | None = None

    @field_validator("at")
    @classmethod
    def _at(cls, value: str | dt.datetime) -> str | dt.datetime:
        if isinstance(value, str):
            try:
                Duration.parse(value)
            except ValueError:
                try:
                    dt.datetime.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"'{value}' is neither an offset (3h) nor a timestamp") from None
        return value

    @model_validator(mode="after")
    def _per_type(self) -> TestEvent:
        if self.type == "task_completed":
            if not self.task or not self.decision:
                raise ValueError("task_completed needs `task` (the step id) and `decision`")
        elif self.type == "event":
            if not self.name:
                raise ValueError("an event needs `name`")
        elif self.type == "manual":
            if not self.flow:
                raise ValueError("a manual event needs `flow`")
        elif not (self.id or self.record):
            raise ValueError(f"{self.type} needs `id` (with `object`) or `record`")
        return self


class Fault(StrictModel):
    flow: str
    step: str
    error: str = Field(description="an error class such as timeout or HTTP 503")
    times: int = Field(1, ge=1)


class Stub(StrictModel):
    flow: str
    step: str
    status: int = 200
    json_: Any = Field(None, alias="json")


class RunExpect(StrictModel):
    flow: str | None = None
    record: str | None = None
    status: str | None = None
    outcome: str | None = None
    count: int | None = Field(None, ge=0)


class MessageExpect(StrictModel):
    channel: Literal["email", "sms", "whatsapp", "notification"] | None = None
    to: str | None = None
    template: str | None = None
    subject_contains: str | None = None
    body_contains: str | None = None
    variant: str | None = None
    at: dt.datetime | None = None
    count: int | None = Field(None, ge=0)


class TaskExpect(StrictModel):
    subject_contains: str | None = None
    status: str | None = None
    assignee: str | None = None
    priority: str | None = None
    related_to: str | None = None
    attachments_required: list[str] | None = None
    decision: str | None = None
    created_at: dt.datetime | None = Field(None, description="when the task was created, to the second")
    count: int | None = Field(None, ge=0)


class RecordExpect(StrictModel):
    object: str
    id: str
    fields: dict[str, Any] = Field(default_factory=dict)


class TimelineExpect(StrictModel):
    record: str
    contains: str
    count: int | None = Field(None, ge=0)


class SlaExpect(StrictModel):
    record: str
    clock: str
    due_at: dt.datetime | None = None
    breached: bool | None = None
    status: str | None = None


class Expectations(StrictModel):
    runs: list[RunExpect] = Field(default_factory=list)
    messages: list[MessageExpect] = Field(default_factory=list)
    tasks: list[TaskExpect] = Field(default_factory=list)
    records: list[RecordExpect] = Field(default_factory=list)
    timeline: list[TimelineExpect] = Field(default_factory=list)
    sla: list[SlaExpect] = Field(default_factory=list)
    no_messages_to: list[str] = Field(default_factory=list)


DEFAULT_TEST_START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


class FlowTest(StrictModel):
    __test__ = False

    kind: Literal["flow_test"]
    name: str = Field(min_length=1, description="free text")
    description: str | None = None
    start_at: dt.datetime = DEFAULT_TEST_START
    flows: list[str] | None = Field(None, description="narrow the active flows and SLA policies to these")
    records: list[str | dict[str, Any]] = Field(default_factory=list)
    events: list[TestEvent] = Field(default_factory=list)
    run_for: DurationStr = "30d"
    faults: list[Fault] = Field(default_factory=list)
    stubs: list[Stub] = Field(default_factory=list)
    expect: Expectations = Field(default_factory=Expectations)

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("start_at needs a UTC offset, e.g. 2026-03-06T16:00:00-05:00 or ...Z")
        return value


# --------------------------------------------------------------------------- flowctl.yaml


class RunnerSettings(StrictModel):
    url: str = "http://127.0.0.1:8787"


class PublishSettings(StrictModel):
    branch: str = "main"
    tag_prefix: str = "flows/v"


class PathSettings(StrictModel):
    flows: str = "flows"
    templates: str = "templates"
    objects: str = "schemas/objects"
    tests: str = "tests/flows"
    fixtures: str = "tests/fixtures"


class ProjectConfig(StrictModel):
    project: str | None = None
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    paths: PathSettings = Field(default_factory=PathSettings)


# --------------------------------------------------------------------------- the union of kinds

Resource = Annotated[
    Flow | SlaPolicy | Calendar | Team | Template | ObjectSchema | FlowTest,
    Field(discriminator="kind"),
]
KIND_MODELS: dict[str, type[BaseModel]] = {
    "flow": Flow,
    "sla_policy": SlaPolicy,
    "calendar": Calendar,
    "team": Team,
    "template": Template,
    "object": ObjectSchema,
    "flow_test": FlowTest,
}
# Which folder (paths key) each kind is expected in.
KIND_FOLDERS = {
    "flow": "flows",
    "sla_policy": "flows",
    "calendar": "flows",
    "team": "flows",
    "template": "templates",
    "object": "objects",
    "flow_test": "tests",
}

_forward_ref_models: list[type[BaseModel]] = [
    LeafCondition, AllCondition, AnyCondition, NotCondition, SendWhatsapp, Approval, IfStep, SwitchCase,
    SwitchSpec, Escalation, SlaPolicy, Flow,
]  # fmt: skip
for _model in _forward_ref_models:
    _model.model_rebuild()
