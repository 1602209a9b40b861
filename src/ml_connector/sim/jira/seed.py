"""Static seed data of the simulated Jira site: projects, workflows, fields, priorities, users.

Ids follow Jira Cloud's conventions (numeric strings, custom fields from 10050) so the connector cannot tell the
simulator from a real site by their shape. Everything here is deterministic; only issues are created at run time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ml_connector.sim.people import PEOPLE


@dataclass(frozen=True)
class StatusCategory:
    id: int
    key: str
    name: str
    color: str


CATEGORIES: dict[str, StatusCategory] = {
    "new": StatusCategory(2, "new", "To Do", "blue-gray"),
    "indeterminate": StatusCategory(4, "indeterminate", "In Progress", "yellow"),
    "done": StatusCategory(3, "done", "Done", "green"),
}


@dataclass(frozen=True)
class Status:
    id: str
    name: str
    category: str  # key into CATEGORIES


STATUSES: dict[str, Status] = {
    s.id: s
    for s in (
        Status("10000", "To Do", "new"),
        Status("3", "In Progress", "indeterminate"),
        Status("10001", "Awaiting Delivery", "indeterminate"),
        Status("10002", "Done", "done"),
        Status("10003", "Cancelled", "done"),
        Status("1", "Open", "new"),
        Status("10004", "On Hold", "indeterminate"),
        Status("5", "Resolved", "done"),
        Status("6", "Closed", "done"),
    )
}


@dataclass(frozen=True)
class Transition:
    id: str
    name: str
    sources: tuple[str, ...]  # status ids the transition is available from
    to: str  # status id
    screen_fields: tuple[str, ...] = ()  # fields on the transition screen
    required_fields: tuple[str, ...] = ()
    sets_resolution: str | None = None  # resolution id set by a post function
    clears_resolution: bool = False


@dataclass(frozen=True)
class Workflow:
    name: str
    initial: str
    statuses: tuple[str, ...]
    transitions: tuple[Transition, ...]


# Workflow A and B deliberately use different transition ids for similar moves ("start progress" is 11 vs 4).
WORKFLOW_A = Workflow(
    name="Procurement Workflow",
    initial="10000",
    statuses=("10000", "3", "10001", "10002", "10003"),
    transitions=(
        Transition("11", "Start Progress", ("10000",), "3"),
        Transition("21", "Await Delivery", ("3",), "10001"),
        Transition("61", "Back to In Progress", ("10001",), "3"),
        Transition("31", "Done", ("3", "10001"), "10002", sets_resolution="10000"),
        Transition("41", "Cancel", ("10000", "3", "10001"), "10003", sets_resolution="10001"),
        Transition("51", "Reopen", ("10002", "10003"), "10000", clears_resolution=True),
    ),
)
WORKFLOW_B = Workflow(
    name="Maintenance Workflow",
    initial="1",
    statuses=("1", "3", "10004", "5", "6"),
    transitions=(
        Transition("4", "Start Progress", ("1",), "3"),
        Transition("301", "Put On Hold", ("3",), "10004"),
        Transition("311", "Resume", ("10004",), "3"),
        Transition("5", "Resolve Issue", ("1", "3"), "5", ("resolution",), ("resolution",)),
        Transition("701", "Close Issue", ("1", "3", "10004", "5"), "6", sets_resolution="10000"),
        Transition("3", "Reopen Issue", ("5", "6"), "1", clears_resolution=True),
    ),
)


@dataclass(frozen=True)
class IssueType:
    id: str
    name: str
    description: str


ISSUE_TYPES: dict[str, IssueType] = {
    t.id: t
    for t in (
        IssueType("10001", "Task", "A small, distinct piece of work."),
        IssueType("10002", "Purchase Order", "A purchase order mirrored from IFS Cloud."),
        IssueType("10003", "Work Order", "A maintenance work order mirrored from IFS Cloud."),
    )
}

RESOLUTIONS: dict[str, str] = {"10000": "Done", "10001": "Won't Do", "10002": "Duplicate", "1": "Fixed"}


@dataclass(frozen=True)
class CustomField:
    id: str  # customfield_10050
    name: str
    kind: str  # "textfield" | "select" | "textarea"
    options: tuple[tuple[str, str], ...] = ()  # (option id, value) for selects

    @property
    def number(self) -> int:
        return int(self.id.rsplit("_", 1)[1])


CUSTOM_FIELDS: dict[str, CustomField] = {
    f.id: f
    for f in (
        CustomField("customfield_10050", "GL Account", "textfield"),
        CustomField(
            "customfield_10051",
            "Cost Center",
            "select",
            (("10100", "CC-100"), ("10101", "CC-200"), ("10102", "CC-300"), ("10103", "CC-400")),
        ),
        CustomField("customfield_10052", "Supplier", "textfield"),
        CustomField("customfield_10053", "IFS Reference", "textfield"),
        CustomField("customfield_10060", "Cost Center", "textfield"),  # a second field with the same name
    )
}

# System fields settable on create/edit screens.
SCREEN_SYSTEM_FIELDS: tuple[str, ...] = (
    "summary",
    "issuetype",
    "project",
    "description",
    "priority",
    "assignee",
    "reporter",
    "labels",
    "duedate",
)


@dataclass(frozen=True)
class Project:
    id: str
    key: str
    name: str
    workflow: Workflow
    issue_types: tuple[str, ...]
    custom_fields: tuple[str, ...]
    # (issue type id) -> required custom field ids
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)


ALL_CF = tuple(CUSTOM_FIELDS)
PROJECTS: dict[str, Project] = {
    p.key: p
    for p in (
        Project(
            "10000",
            "PROC",
            "Procurement",
            WORKFLOW_A,
            ("10001", "10002"),
            ALL_CF,
            {"10002": ("customfield_10053", "customfield_10050")},
        ),
        Project(
            "10001",
            "MAINT",
            "Maintenance",
            WORKFLOW_B,
            ("10001", "10003"),
            ("customfield_10050", "customfield_10051", "customfield_10053", "customfield_10060"),
            {"10003": ("customfield_10053",)},
        ),
        Project(
            "10002",
            "CAPEX",
            "Capital Projects",
            WORKFLOW_A,
            ("10001", "10002"),
            ALL_CF,
            {"10002": ("customfield_10053", "customfield_10051")},
        ),
    )
}

PRIORITIES: tuple[tuple[str, str, str], ...] = (
    ("1", "Highest", "#d04437"),
    ("2", "High", "#f15C75"),
    ("3", "Medium", "#f79232"),
    ("4", "Low", "#707070"),
    ("5", "Lowest", "#999999"),
)
DEFAULT_PRIORITY = "3"


@dataclass(frozen=True)
class User:
    account_id: str
    display_name: str
    email: str
    email_hidden: bool = False
    time_zone: str = "Europe/Stockholm"
    account_type: str = "atlassian"


def account_id_for(email: str) -> str:
    """Atlassian account ids look like ``712020:<uuid>``; derive one stably from the email."""
    return "712020:" + str(uuid.uuid5(uuid.NAMESPACE_DNS, email.lower()))


def build_users(connector_email: str, time_zone: str) -> list[User]:
    users = [User(account_id_for(connector_email), "ML Connector", connector_email, time_zone=time_zone)]
    for person in PEOPLE:
        if person.in_jira:
            users.append(
                User(account_id_for(person.email), person.name, person.email, email_hidden=person.jira_email_hidden)
            )
    return users
