"""The JQL subset of the simulator: the compiler from parsed JQL (``jqlparse``) to predicates plus index-backed
candidate sets, sorting, and the webhook filter check.

Jira semantics that the connector relies on and that are easy to get wrong are reproduced on purpose:
datetimes are read in the account's time zone and compared at minute precision; ``!=`` / ``NOT IN`` never match an
empty field; text fields only support ``~`` (word match, so confirm exactness client-side).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ml_connector.sim.jira.adf import adf_text
from ml_connector.sim.jira.jqlfields import (
    PROP_RE,
    field_missing,
    resolve_field,
    sort_issues,
    sort_key,
    webhook_filter_error,
)
from ml_connector.sim.jira.jqlparse import (
    DATE_HELP,
    Clause,
    Empty,
    Func,
    History,
    JqlError,
    Lit,
    Node,
    NotOp,
    Operand,
    parse,
    tokenize,
)
from ml_connector.sim.jira.model import Issue, StatusMove
from ml_connector.sim.jira.seed import (
    CATEGORIES,
    CUSTOM_FIELDS,
    ISSUE_TYPES,
    PRIORITIES,
    PROJECTS,
    RESOLUTIONS,
    STATUSES,
)

__all__ = [
    "Compiled",
    "Index",
    "JqlEnv",
    "JqlError",
    "UserRef",
    "compile_query",
    "parse",
    "sort_issues",
    "tokenize",
    "webhook_filter_error",
]


# ------------------------------------------------------------------------------------------------- environment
@dataclass
class UserRef:
    account_id: str
    display_name: str
    email: str
    email_hidden: bool


@dataclass
class JqlEnv:
    """What the compiler needs to know about the site: users, the caller, the clock and the account's zone."""

    users: list[UserRef]
    current_account: str
    tz: ZoneInfo
    now: datetime
    key_to_id: Callable[[str], int | None]


@dataclass
class Index:
    """Inverted indexes over the searchable (possibly lagging) copies of issues."""

    issues: dict[int, Issue] = field(default_factory=dict)
    by_project: dict[str, set[int]] = field(default_factory=dict)
    by_label: dict[str, set[int]] = field(default_factory=dict)
    by_status: dict[str, set[int]] = field(default_factory=dict)

    def add(self, issue: Issue) -> None:
        self.remove(issue.id)
        self.issues[issue.id] = issue
        self.by_project.setdefault(issue.project, set()).add(issue.id)
        self.by_status.setdefault(issue.status, set()).add(issue.id)
        for label in issue.labels:
            self.by_label.setdefault(label, set()).add(issue.id)

    def remove(self, issue_id: int) -> None:
        old = self.issues.pop(issue_id, None)
        if old is None:
            return
        self.by_project.get(old.project, set()).discard(issue_id)
        self.by_status.get(old.status, set()).discard(issue_id)
        for label in old.labels:
            self.by_label.get(label, set()).discard(issue_id)


Pred = Callable[[Issue], bool]
Cand = Callable[[Index], set[int] | None]  # None: no index helps, scan everything


@dataclass
class Compiled:
    pred: Pred
    cand: Cand
    order: tuple[tuple[str, bool], ...]
    bounded: bool


# ------------------------------------------------------------------------------------------------- compiler
def _equality(op: str, name: str) -> bool:
    """True for ``=``/``in``, False for ``!=``/``not in``; any other operator is refused."""
    if op in ("=", "in"):
        return True
    if op in ("!=", "not in"):
        return False
    raise _op_unsupported(op, name)


def _op_unsupported(op: str, name: str) -> JqlError:
    shown = op.upper() if op[0].isalpha() else op
    return JqlError(f"The operator '{shown}' is not supported by the '{name}' field.")


def _no_value(value: str, name: str) -> JqlError:
    return JqlError(f"The value '{value}' does not exist for the field '{name}'.")


def _values(op: Operand) -> list[Lit | Func]:
    if isinstance(op, tuple):
        return list(op)
    if isinstance(op, Empty):
        return []
    return [op]


def _word_tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^\w*?]+", text.lower()) if t]


def _text_match(query: str, text: str) -> bool:
    """Jira's ``~``: every query word must occur in the text (trailing ``*`` wildcards allowed), any order."""
    words = set(re.split(r"\W+", text.lower()))
    for term in _word_tokens(query):
        if term.endswith("*") or "?" in term:
            pattern = re.compile(re.escape(term).replace(r"\*", r"\w*").replace(r"\?", r"\w") + "$")
            if not any(pattern.match(w) for w in words):
                return False
        elif term not in words:
            return False
    return True


_REL = re.compile(r"^([-+]?)\s*((?:\d+\s*[wdhm]\s*)+)$", re.IGNORECASE)


def _epoch_minute(dt: datetime) -> int:
    return int(dt.timestamp()) // 60


class _Compiler:
    def __init__(self, env: JqlEnv) -> None:
        self.env = env

    # values -----------------------------------------------------------------------------------------------
    def date_minute(self, value: Lit | Func, name: str) -> int:
        env = self.env
        if isinstance(value, Func):
            fname = value.name.lower()
            local_now = env.now.astimezone(env.tz)
            if fname == "now":
                return _epoch_minute(env.now)
            if fname == "startofday":
                return _epoch_minute(local_now.replace(hour=0, minute=0, second=0, microsecond=0))
            if fname == "endofday":
                return _epoch_minute(local_now.replace(hour=23, minute=59, second=0, microsecond=0))
            raise JqlError(f"Unable to find JQL function '{value.name}()'.")
        text = value.text.strip()
        for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
            try:
                local = datetime.strptime(text, fmt).replace(tzinfo=env.tz)
            except ValueError:
                continue
            return _epoch_minute(local)
        m = _REL.match(text)
        if m:
            minutes = 0
            for amount, unit in re.findall(r"(\d+)\s*([wdhm])", m.group(2).lower()):
                minutes += int(amount) * {"w": 10080, "d": 1440, "h": 60, "m": 1}[unit]
            sign = -1 if m.group(1) == "-" else 1
            return _epoch_minute(env.now + timedelta(minutes=sign * minutes))
        raise JqlError(f"Date value '{value.text}' for field '{name}' is invalid. {DATE_HELP}")

    def user_ids(self, value: Lit | Func, name: str) -> str:
        if isinstance(value, Func):
            if value.name.lower() == "currentuser":
                return self.env.current_account
            raise JqlError(f"Unable to find JQL function '{value.name}()'.")
        for user in self.env.users:
            if value.text == user.account_id or value.text.lower() == user.email.lower():
                return user.account_id
        for user in self.env.users:
            if value.text.lower() == user.display_name.lower():
                return user.account_id
        raise JqlError(f"The value '{value.text}' does not exist for the field '{name}'.")

    @staticmethod
    def lit(value: Lit | Func, name: str) -> str:
        if isinstance(value, Func):
            raise JqlError(f"Unable to find JQL function '{value.name}()'.")
        return value.text

    # clauses ----------------------------------------------------------------------------------------------
    def clause(self, c: Clause) -> tuple[Pred, Cand]:
        canon, cf_ids = resolve_field(c.field)
        op, name = c.op, c.field
        if isinstance(c.value, History):
            return self.changed_clause(canon, name, c.value)
        if op in ("is", "is not"):
            if not isinstance(c.value, Empty):
                raise JqlError(f"The operator '{op.upper()}' can only be used with the values 'EMPTY' or 'NULL'.")
            empty = self.empty_pred(canon, cf_ids, c.field, name)
            if op == "is":
                return empty, _no_cand
            return (lambda i: not empty(i)), _no_cand
        if isinstance(c.value, Empty):
            if op == "=":
                return self.clause(Clause(c.field, "is", c.value, c.pos))
            if op == "!=":
                return self.clause(Clause(c.field, "is not", c.value, c.pos))
            raise _op_unsupported(op, name)
        values = _values(c.value)
        if canon in ("project", "issuetype", "status", "statusCategory", "priority", "resolution"):
            return self.named_clause(canon, op, name, values)
        if canon == "labels":
            return self.labels_clause(canon, op, name, values)
        if canon == "key":
            return self.key_clause(canon, op, name, values)
        if canon in ("updated", "created", "resolutiondate"):
            if op in ("~", "!~"):
                raise _op_unsupported(op, name)
            minutes = [self.date_minute(v, name) for v in values]
            dget = _DATE_GETTERS[canon]
            return _compare_pred(dget, op, minutes), _no_cand
        if canon == "duedate":
            raise (
                _op_unsupported(op, name)
                if op in ("~", "!~")
                else JqlError(f"Field '{name}' is not supported by this simulator.")
            )
        if canon in ("assignee", "reporter"):
            return self.user_clause(canon, op, name, values)
        if canon in ("summary", "description", "text"):
            return self.text_clause(canon, op, name, values)
        if canon == "custom":
            return self.custom_clause(c, cf_ids, values)
        if canon == "property":
            return self.property_clause(c, values)
        raise field_missing(name)  # pragma: no cover - resolve_field covers every canonical name

    def changed_clause(self, canon: str, name: str, history: History) -> tuple[Pred, Cand]:
        """``FIELD CHANGED [AFTER|BEFORE|ON d] [DURING (d1, d2)] [BY u] [FROM v] [TO v]``: some change of the field
        meets every predicate. Jira searches history for assignee, fix version, priority, reporter, resolution and
        status only (https://support.atlassian.com/jira-software-cloud/docs/jql-operators/#CHANGED); this simulator
        keeps the history of status. The error wording for other fields is Jira's as recalled, not captured."""
        if canon not in _HISTORY_FIELDS:
            raise JqlError(f"History searches do not support the '{name}' field.")
        if canon != "status":
            raise JqlError(f"History searches of '{name}' are not supported by this simulator.")
        tests = [self.move_test(predicate, value, name) for predicate, value in history.predicates]

        def pred(i: Issue) -> bool:
            return any(all(test(move) for test in tests) for move in i.status_moves)

        return pred, _no_cand

    def move_test(
        self, predicate: str, value: Lit | Func | tuple[Lit | Func, ...], name: str
    ) -> Callable[[StatusMove], bool]:
        """One predicate of a status history search as a test of one change. Dates are read as in ``updated``
        clauses (the account's zone, minute precision); ON and DURING's end take a whole day for a date alone."""
        if predicate == "during":
            assert isinstance(value, tuple)
            low, _ = self.date_span(value[0], name)
            _, high = self.date_span(value[1], name)
            return lambda m: low <= m.when < high
        assert not isinstance(value, tuple)
        if predicate in ("after", "before", "on"):
            start, end = self.date_span(value, name)
            if predicate == "after":
                return lambda m: m.when > start
            if predicate == "before":
                return lambda m: m.when < start
            return lambda m: start <= m.when < end
        if predicate == "by":
            account = self.user_ids(value, name)
            return lambda m: m.actor == account
        status = self.resolve_named("status", self.lit(value, name), name)
        if predicate == "from":
            return lambda m: m.old == status
        return lambda m: m.new == status

    def date_span(self, value: Lit | Func, name: str) -> tuple[datetime, datetime]:
        """[start, end) of a date value: its minute, or its day when it names a date alone."""
        start = datetime.fromtimestamp(self.date_minute(value, name) * 60, tz=UTC)
        whole_day = isinstance(value, Lit) and re.fullmatch(r"\s*\d{4}[-/]\d{2}[-/]\d{2}\s*", value.text) is not None
        return start, start + timedelta(days=1 if whole_day else 0, minutes=0 if whole_day else 1)

    def named_clause(self, canon: str, op: str, name: str, values: list[Lit | Func]) -> tuple[Pred, Cand]:
        positive = _equality(op, name)
        ids = {self.resolve_named(canon, self.lit(v, name), name) for v in values}
        getter = _GETTERS[canon]
        if positive:
            pred: Pred = lambda i: getter(i) in ids  # noqa: E731
        else:
            pred = lambda i: (g := getter(i)) is not None and g not in ids  # noqa: E731
        cand: Cand = _no_cand
        if positive and canon == "project":
            cand = lambda ix: _union(ix.by_project.get(k, set()) for k in ids)  # noqa: E731
        elif positive and canon == "status":
            cand = lambda ix: _union(ix.by_status.get(s, set()) for s in ids)  # noqa: E731
        return pred, cand

    def labels_clause(self, canon: str, op: str, name: str, values: list[Lit | Func]) -> tuple[Pred, Cand]:
        positive = _equality(op, name)
        labels = {self.lit(v, name) for v in values}
        if positive:
            return (lambda i: any(lb in labels for lb in i.labels)), (
                lambda ix: _union(ix.by_label.get(lb, set()) for lb in labels)
            )
        return (lambda i: bool(i.labels) and not any(lb in labels for lb in i.labels)), _no_cand

    def key_clause(self, canon: str, op: str, name: str, values: list[Lit | Func]) -> tuple[Pred, Cand]:
        positive = _equality(op, name)
        wanted: set[int] = set()
        for v in values:
            text = self.lit(v, name)
            found = int(text) if text.isdigit() else self.env.key_to_id(text.upper())
            if found is None:
                if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*-\d+", text) and text.split("-")[0].upper() in PROJECTS:
                    raise JqlError(f"An issue with key '{text}' does not exist for field 'key'.")
                if not text.isdigit():
                    raise JqlError(f"The issue key '{text}' for field '{name}' is invalid.")
                continue
            wanted.add(found)
        if positive:
            return (lambda i: i.id in wanted), (lambda ix: set(wanted))
        return (lambda i: i.id not in wanted), _no_cand

    def user_clause(self, canon: str, op: str, name: str, values: list[Lit | Func]) -> tuple[Pred, Cand]:
        positive = _equality(op, name)
        accounts = {self.user_ids(v, name) for v in values}
        uget = _GETTERS[canon]
        if positive:
            return (lambda i: uget(i) in accounts), _no_cand
        return (lambda i: (u := uget(i)) is not None and u not in accounts), _no_cand

    def text_clause(self, canon: str, op: str, name: str, values: list[Lit | Func]) -> tuple[Pred, Cand]:
        if op not in ("~", "!~"):
            raise _op_unsupported(op, name)
        query = self.lit(values[0], name)
        tget = _TEXT_GETTERS[canon]
        if op == "~":
            return (lambda i: _text_match(query, tget(i))), _no_cand
        return (lambda i: not _text_match(query, tget(i))), _no_cand

    def custom_clause(self, c: Clause, cf_ids: list[str], values: list[Lit | Func]) -> tuple[Pred, Cand]:
        fields = [CUSTOM_FIELDS[f] for f in cf_ids]
        op, name = c.op, c.field
        text_fields = [f.id for f in fields if f.kind != "select"]
        select_fields = [f for f in fields if f.kind == "select"]
        if op in ("~", "!~"):
            if not text_fields:
                raise _op_unsupported(op, name)
            query = self.lit(values[0], name)

            def match(i: Issue) -> bool:
                return any(isinstance(v := i.custom.get(f), str) and _text_match(query, v) for f in text_fields)

            return (match if op == "~" else (lambda i: not match(i))), _no_cand
        if op in ("=", "!=", "in", "not in"):
            if not select_fields:
                raise _op_unsupported(op, name)
            option_ids: set[str] = set()
            for v in values:
                text = self.lit(v, name)
                hits = [oid for f in select_fields for oid, val in f.options if text in (oid, val)]
                if not hits:
                    raise _no_value(text, name)
                option_ids.update(hits)
            sids = [f.id for f in select_fields]
            if op in ("=", "in"):
                return (lambda i: any(i.custom.get(f) in option_ids for f in sids)), _no_cand
            return (
                lambda i: any(i.custom.get(f) is not None and i.custom.get(f) not in option_ids for f in sids)
            ), _no_cand
        raise _op_unsupported(op, name)

    def property_clause(self, c: Clause, values: list[Lit | Func]) -> tuple[Pred, Cand]:
        m = PROP_RE.match(c.field)
        assert m is not None
        prop_key, path = m.group(1), (m.group(2) or "")
        wanted = {self.lit(v, c.field) for v in values}

        def get(i: Issue) -> Any:
            value: Any = i.properties.get(prop_key)
            for part in [p for p in path.split(".") if p]:
                value = value.get(part) if isinstance(value, dict) else None
            return value

        def as_texts(value: Any) -> list[str]:
            if value is None:
                return []
            if isinstance(value, list):
                return [_prop_text(v) for v in value]
            return [_prop_text(value)]

        op = c.op
        if op in ("=", "in"):
            return (lambda i: any(t in wanted for t in as_texts(get(i)))), _no_cand
        if op in ("!=", "not in"):
            return (lambda i: bool(ts := as_texts(get(i))) and not any(t in wanted for t in ts)), _no_cand
        if op == "~":
            query = next(iter(wanted))
            return (lambda i: any(_text_match(query, t) for t in as_texts(get(i)))), _no_cand
        if op in ("<", "<=", ">", ">="):
            bound = next(iter(wanted))

            def cmp(i: Issue) -> bool:
                got = get(i)
                if got is None:
                    return False
                try:
                    a: Any = float(got)
                    b: Any = float(bound)
                except (TypeError, ValueError):
                    a, b = str(got), bound
                return bool(_CMP[op](a, b))

            return cmp, _no_cand
        raise _op_unsupported(op, c.field)

    def empty_pred(self, canon: str, cf_ids: list[str], raw: str, name: str) -> Pred:
        if canon in ("assignee", "reporter", "priority", "resolution", "resolutiondate"):
            getter = _GETTERS.get(canon) or _DATE_GETTERS[canon]
            return lambda i: getter(i) is None
        if canon == "labels":
            return lambda i: not i.labels
        if canon == "description":
            return lambda i: i.description is None
        if canon == "duedate":
            return lambda i: i.duedate is None
        if canon == "custom":
            return lambda i: all(i.custom.get(f) in (None, "") for f in cf_ids)
        if canon == "property":
            m = PROP_RE.match(raw)
            assert m is not None
            key = m.group(1)
            return lambda i: key not in i.properties
        raise _op_unsupported("is", name)

    def resolve_named(self, canon: str, text: str, name: str) -> str:
        low = text.lower()
        if canon == "project":
            for p in PROJECTS.values():
                if low in (p.key.lower(), p.id, p.name.lower()):
                    return p.key
        elif canon == "issuetype":
            for t in ISSUE_TYPES.values():
                if low in (t.id, t.name.lower()):
                    return t.id
        elif canon == "status":
            for s in STATUSES.values():
                if low in (s.id, s.name.lower()):
                    return s.id
        elif canon == "statusCategory":
            for cat in CATEGORIES.values():
                if low in (str(cat.id), cat.key, cat.name.lower()):
                    return cat.key
        elif canon == "priority":
            for pid, pname, _ in PRIORITIES:
                if low in (pid, pname.lower()):
                    return pid
        elif canon == "resolution":
            for rid, rname in RESOLUTIONS.items():
                if low in (rid, rname.lower()):
                    return rid
        raise _no_value(text, name)

    # tree -------------------------------------------------------------------------------------------------
    def node(self, n: Node) -> tuple[Pred, Cand]:
        if isinstance(n, Clause):
            return self.clause(n)
        if isinstance(n, NotOp):
            inner, _ = self.node(n.item)
            return (lambda i: not inner(i)), _no_cand
        parts = [self.node(item) for item in n.items]
        preds = [p for p, _ in parts]
        cands = [c for _, c in parts]
        if n.op == "and":

            def and_pred(i: Issue) -> bool:
                for p in preds:  # noqa: SIM110 - a plain loop is measurably faster on large candidate sets
                    if not p(i):
                        return False
                return True

            def and_cand(ix: Index) -> set[int] | None:
                best: set[int] | None = None
                for cand in cands:
                    got = cand(ix)
                    if got is not None:
                        best = got if best is None else best & got
                return best

            return and_pred, and_cand

        def or_pred(i: Issue) -> bool:
            return any(p(i) for p in preds)

        def or_cand(ix: Index) -> set[int] | None:
            out: set[int] = set()
            for cand in cands:
                got = cand(ix)
                if got is None:
                    return None
                out |= got
            return out

        return or_pred, or_cand


def _prop_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _no_cand(ix: Index) -> None:
    return None


def _union(sets: Iterable[set[int]]) -> set[int]:
    out: set[int] = set()
    for s in sets:
        out |= s
    return out


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare_pred(getter: Callable[[Issue], datetime | None], op: str, minutes: list[int]) -> Pred:
    """Minute-precision comparison done on datetimes (``floor(t) >= b`` is ``t >= b``; ``floor(t) > b`` is
    ``t >= b + 1 min``), which avoids a timestamp conversion per issue on large candidate sets."""
    if op in ("in", "not in"):
        wanted = set(minutes)

        def in_pred(i: Issue) -> bool:
            dt = getter(i)
            return dt is not None and ((_epoch_minute(dt) in wanted) == (op == "in"))

        return in_pred
    low = datetime.fromtimestamp(minutes[0] * 60, tz=UTC)
    high = low + timedelta(minutes=1)
    tests: dict[str, Callable[[datetime], bool]] = {
        ">=": lambda dt: dt >= low,
        ">": lambda dt: dt >= high,
        "<=": lambda dt: dt < high,
        "<": lambda dt: dt < low,
        "=": lambda dt: low <= dt < high,
        "!=": lambda dt: not (low <= dt < high),
    }
    test = tests[op]

    def pred(i: Issue) -> bool:
        dt = getter(i)
        return dt is not None and test(dt)

    return pred


# The fields Jira keeps searchable history of (CHANGED, WAS), as canonical names of ``resolve_field``.
_HISTORY_FIELDS = frozenset({"assignee", "fixVersion", "priority", "reporter", "resolution", "status"})

_GETTERS: dict[str, Callable[[Issue], Any]] = {
    "project": lambda i: i.project,
    "issuetype": lambda i: i.issuetype,
    "status": lambda i: i.status,
    "statusCategory": lambda i: STATUSES[i.status].category,
    "priority": lambda i: i.priority,
    "resolution": lambda i: i.resolution,
    "assignee": lambda i: i.assignee,
    "reporter": lambda i: i.reporter,
}
_DATE_GETTERS: dict[str, Callable[[Issue], datetime | None]] = {
    "updated": lambda i: i.updated,
    "created": lambda i: i.created,
    "resolutiondate": lambda i: i.resolutiondate,
}
_TEXT_GETTERS: dict[str, Callable[[Issue], str]] = {
    "summary": lambda i: i.summary,
    "description": lambda i: adf_text(i.description),
    "text": lambda i: " ".join(
        [i.summary, adf_text(i.description), *(v for v in i.custom.values() if isinstance(v, str))]
    ),
}


def compile_query(text: str, env: JqlEnv) -> Compiled:
    query = parse(text)
    compiler = _Compiler(env)
    for fname, _ in query.order:
        sort_key(fname)  # validate early
    if query.where is None:
        return Compiled(lambda i: True, _no_cand, query.order, bounded=False)
    pred, cand = compiler.node(query.where)
    return Compiled(pred, cand, query.order, bounded=True)
