"""Wiring: one ``Connector`` holds the config, the store and the two clients, plus caches shared across runs."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from ml_connector.config.connections import JiraOAuth
from ml_connector.config.models import ConnectorConfig, FlowConfig, LookupConfig
from ml_connector.engine.budgets import SharedPacers, shared_budget_use, shared_pacers
from ml_connector.engine.failures import describe
from ml_connector.engine.report import RunReport
from ml_connector.errors import AuthError, ConfigError, ConnectorError, Rejected, StaleMetadata, TransientError
from ml_connector.http.ratelimit import RateLimitBudget, rate_limit_scope, submit_in_scope
from ml_connector.http.session import CallObserver
from ml_connector.ifs import IfsClient
from ml_connector.jira.client import JiraClient
from ml_connector.jira.fields import FieldInfo, FieldRegistry, split_field_name
from ml_connector.jira.tokens import TokenStore
from ml_connector.mapping import FieldTarget, MappingContext
from ml_connector.reasons import flow_path
from ml_connector.store import Store, utcnow

USER_CACHE_AGE = timedelta(hours=24)
CALLS_AT_ONCE = 8  # independent lookups (IFS sets, Jira metadata, user searches) sent at once
# Jira metadata (fields, priorities, projects, createmeta) is kept this long, in the process and in the store (so a
# new process skips those reads). A write Jira refuses over a field while it is older than the run reads it again
# (``stale_metadata``), as does a mapping failure it decided (engine/outbound.py).
JIRA_METADATA_TTL = 3600.0
JIRA_METADATA = ("jira:", "createmeta:")
# An IFS projection's $metadata (key fields, property types) changes with an upgrade, not with a record: kept as long.
IFS_METADATA_TTL = 3600.0  # name prefixes of the Jira metadata entries
# Fields of a Jira refusal that only metadata can make wrong (a field id, an option, a priority, a project).
_METADATA_FIELDS = frozenset({"priority", "project", "issuetype"})


def _field_kind(custom_type: str | None, schema_type: str | None) -> str:
    short = (custom_type or "").rsplit(":", 1)[-1]
    if short in {"select", "radiobuttons"}:
        return "select"
    if short == "textarea":
        return "textarea"
    if short == "float" or schema_type == "number":
        return "number"
    return "text"


@dataclass
class _Cached:
    value: Any
    expires: float
    read_at: datetime  # when it was read from the far side


@dataclass(frozen=True)
class _Codec:
    """How a cached value is kept in the store's ``metadata_cache`` (JSON) and read back."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


_SETS = _Codec(sorted, frozenset)
_REGISTRY = _Codec(
    lambda registry: [asdict(info) for info in registry.infos()],
    lambda rows: FieldRegistry(FieldInfo(**{**row, "clause_names": tuple(row["clause_names"])}) for row in rows),
)
_ALLOWED = _Codec(
    lambda allowed: {k: sorted(v) for k, v in allowed.items()},
    lambda data: {str(k): frozenset(v) for k, v in data.items()},
)


def _stamp(text: str) -> str:
    """A short fixed-size name for where metadata was read from (``metadata_cache.source``)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _KeptIfsMetadata:
    """IFS ``$metadata`` documents kept in the store for ``IFS_METADATA_TTL`` (``ifs.client.MetadataKeeper``)."""

    store: Store
    source: str

    def load(self, projection: str) -> bytes | None:
        age = timedelta(seconds=IFS_METADATA_TTL)
        entry = self.store.metadata.get(f"ifs:metadata:{projection}", source=self.source, max_age=age)
        document = entry.value.get("csdl") if entry is not None and isinstance(entry.value, dict) else None
        return document.encode() if isinstance(document, str) else None

    def keep(self, projection: str, document: bytes) -> None:
        text = document.decode("utf-8", errors="replace")
        self.store.metadata.put(f"ifs:metadata:{projection}", {"csdl": text}, source=self.source)


@dataclass
class Connector:
    """Everything a run needs. Clients are built on first use so ``status`` and the dashboard need no network."""

    config: ConnectorConfig
    store: Store
    observer: CallObserver | None = None
    token_store: TokenStore | None = None
    ifs_factory: Callable[[], IfsClient] | None = None
    jira_factory: Callable[[], JiraClient] | None = None
    _ifs: IfsClient | None = None
    _jira: JiraClient | None = None
    # Set on shutdown (the daemon's SIGTERM): HTTP backoff and pacing waits of both clients end at once.
    stopping: threading.Event = field(default_factory=threading.Event)
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Each client is built under its own lock: building the Jira client (its TLS context takes tens of ms) must not
    # hold back a thread that only needs the IFS client (a run's lookups go out while the Jira client is built).
    _ifs_lock: threading.Lock = field(default_factory=threading.Lock)
    _jira_lock: threading.Lock = field(default_factory=threading.Lock)
    # User searches in flight, by lower-case email: pages prepared side by side often need the same new assignees.
    _user_searches: dict[str, Future[str | None]] = field(default_factory=dict)
    _pacers: SharedPacers | None = None
    _pacers_built: bool = False
    # Far-side metadata kept in the store across processes (and read from it). False for what must see the far side
    # as it is now and has no store to keep it in (``check``'s sample mapping).
    keep_metadata: bool = True

    @property
    def ifs(self) -> IfsClient:
        with self._ifs_lock:
            if self._ifs is None:
                self._ifs = (self.ifs_factory or self._default_ifs)()
                self._ifs.session.stop = self.stopping
            return self._ifs

    @property
    def jira(self) -> JiraClient:
        with self._jira_lock:
            if self._jira is None:
                self._jira = (self.jira_factory or self._default_jira)()
                self._jira.session.stop = self.stopping
            return self._jira

    def _shared_pacers(self) -> SharedPacers | None:
        """The pacers on the shared (PostgreSQL) buckets, built once; None with local buckets."""
        with self._lock:
            if not self._pacers_built:
                self._pacers = shared_pacers(self.config, self.store)
                self._pacers_built = True
            return self._pacers

    def _default_ifs(self) -> IfsClient:
        pacers = self._shared_pacers()
        ifs = self.config.ifs
        keeper = _KeptIfsMetadata(self.store, _stamp(f"{ifs.base_url}|{ifs.client_id}")) if self.keep_metadata else None
        return IfsClient.from_connection(
            ifs, observer=self.observer, pacer=pacers.ifs if pacers else None, keeper=keeper
        )

    def _default_jira(self) -> JiraClient:
        pacers = self._shared_pacers()
        return JiraClient.from_connection(
            self.config.jira,
            observer=self.observer,
            token_store=self.token_store,
            pacer=pacers.jira if pacers else None,
        )

    def quota_left(self) -> int | None:
        """Jira's points quota left (OAuth apps; None: not known): the row every process shares with
        ``runner.rate_buckets: postgres``, else this process's gauge once its Jira client exists."""
        if not isinstance(self.config.jira.auth, JiraOAuth):
            return None
        pacers = self._shared_pacers()
        jira = self._jira
        pacer = pacers.jira if pacers is not None else (jira.session.pacer if jira else None)
        return pacer.quota.points_left() if pacer is not None else None

    def shared_budget_use(self) -> list[tuple[str, str, int, float]]:
        """What every process took from this connection's shared buckets and waited, by system and key class
        (``runner.rate_buckets: postgres``; empty with local buckets, where each process counts its own)."""
        pacers = self._shared_pacers()
        return [] if pacers is None else shared_budget_use(self.config, pacers.engine)

    def close(self) -> None:
        if self._ifs is not None:
            self._ifs.close()
        if self._jira is not None:
            self._jira.close()
        if self._pacers is not None:
            self._pacers.close()

    # -- health ----------------------------------------------------------------------------------------------------

    @contextmanager
    def run_row(
        self, report: RunReport, *, default_system: str, stop: threading.Event | None = None
    ) -> Iterator[RunReport]:
        """The run's row in the store: opened unless a dry run, always finished with status, counts and error, also
        when an unforeseen bug escapes (the row must never say "succeeded" then). Far-side failures update health.

        The run's API calls wait out 429s against one budget of ``sync.rate_limit_wait_max`` seconds; ``stop`` ends
        such a wait at once. The time waited is ``report.rate_limit_wait_s``, the Jira quota points used
        ``report.quota_points``."""
        if not report.dry_run:
            report.run_id = self.store.runs.start(report.flow, report.kind)
        budget = RateLimitBudget(self.config.sync.rate_limit_wait_max, stop=stop)
        try:
            with rate_limit_scope(budget):
                yield report
        except (AuthError, TransientError, ConfigError) as exc:
            report.error = describe(exc)
            self.note_contact(exc.system or default_system, exc)
            raise
        except Exception as exc:
            report.error = describe(exc)
            raise
        finally:
            report.rate_limit_wait_s = budget.waited
            report.quota_points = budget.points
            if report.run_id is not None:
                counts = dict(report.counts)
                if budget.waited:
                    counts["rate_limit_wait_s"] = round(budget.waited)  # kept with the run for the dashboard
                if budget.points:
                    counts["quota_points"] = budget.points
                self.store.runs.finish(report.run_id, report.status, counts, report.error)

    def note_contact(self, system: str, error: BaseException | None = None) -> None:
        """Remember the last contact outcome per system for /readyz and the dashboard."""
        system = system.split("-", 1)[0]  # "ifs-iam" (the token endpoint) is IFS as far as operators care
        if error is None:
            self.store.health.record(system, "operational")
        elif isinstance(error, AuthError):
            self.store.health.record(system, "auth_failed", str(error))
        elif isinstance(error, TransientError):
            self.store.health.record(system, "unreachable", str(error))

    # -- cached lookups --------------------------------------------------------------------------------------------

    def _cached(self, name: str, ttl: float, load: Callable[[], Any], kept: _Codec | None = None) -> Any:
        """``name``'s value from this process's cache, else (``kept``: Jira metadata) from the store's if read from
        this Jira site within ``ttl``, else ``load()``ed (and then kept in the store too)."""
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and hit.expires > now:
            return hit.value
        if not self.keep_metadata:
            kept = None
        if kept is not None and (stored := self._stored(name, ttl, kept)) is not None:
            value, read_at = stored
            age = (utcnow() - read_at).total_seconds()
            self._cache[name] = _Cached(value, now + ttl - age, read_at)
            return value
        read_at = utcnow()
        value = load()
        self._cache[name] = _Cached(value, now + ttl, read_at)
        if kept is not None:
            self.store.metadata.put(name, kept.encode(value), source=self._jira_source(), fetched_at=read_at)
        return value

    def _stored(self, name: str, ttl: float, kept: _Codec) -> tuple[Any, datetime] | None:
        entry = self.store.metadata.get(name, source=self._jira_source(), max_age=timedelta(seconds=ttl))
        if entry is None:
            return None
        try:
            return kept.decode(entry.value), entry.fetched_at
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # written by another version in another shape: read it again

    def _jira_source(self) -> str:
        """Which Jira site and identity metadata was read from: an entry from another one is not used."""
        jira = self.config.jira
        who = jira.auth.email if not isinstance(jira.auth, JiraOAuth) else f"{jira.auth.client_id}@{jira.auth.cloud_id}"
        return _stamp(f"{jira.url}|{jira.auth.kind}|{who}")

    def invalidate_caches(self) -> None:
        self._cache.clear()

    def forget_jira_metadata(self) -> None:
        """Drop the Jira metadata here and in the store: the next need reads it from Jira again."""
        for name in [n for n in self._cache if n.startswith(JIRA_METADATA)]:
            self._cache.pop(name, None)
        if self.keep_metadata:
            self.store.metadata.forget(*JIRA_METADATA)

    def jira_metadata_read_at(self) -> datetime | None:
        """When the oldest Jira metadata this process holds was read from Jira (None: it holds none)."""
        times = [hit.read_at for name, hit in list(self._cache.items()) if name.startswith(JIRA_METADATA)]
        return min(times, default=None)

    def stale_metadata(
        self, error: BaseException, *, read_at: datetime | None, since: datetime
    ) -> ConnectorError | None:
        """A Jira refusal of a write over a field that only metadata can make wrong (a custom field, a priority, a
        project), when the metadata the write was built from was read (``read_at``) before the run (``since``):
        the metadata is dropped and the write is to be retried (``StaleMetadata``) with what Jira says now. None
        otherwise: the refusal stands (with metadata read during the run, a refusal is the record's own)."""
        if not isinstance(error, Rejected) or error.system != "jira" or read_at is None or read_at >= since:
            return None
        named = [str(k) for k in (error.details.get("errors") or {})]
        if not any(k.startswith("customfield_") or k in _METADATA_FIELDS for k in named):
            return None
        self.forget_jira_metadata()
        return StaleMetadata(
            f"{error.message} (Jira metadata read {read_at:%Y-%m-%d %H:%M} UTC, before the run: read again, retried)",
            system="jira",
            status=error.status,
        )

    def _lookup(self, name: str, spec: LookupConfig | None) -> Mapping[str, Mapping[str, Any]]:
        if spec is None:
            return {}

        def load() -> dict[str, Mapping[str, Any]]:
            rows = self.ifs.iter_records(
                spec.entity_set, select=spec.select or None, filter=spec.filter, key_fields=[spec.key]
            )
            return {str(r.get(spec.key)): r for r in rows}

        result: Mapping[str, Mapping[str, Any]] = self._cached(f"lookup:{name}", spec.ttl, load)
        return result

    def field_registry(self) -> FieldRegistry:
        registry: FieldRegistry = self._cached(
            "jira:fields", JIRA_METADATA_TTL, lambda: self.jira.fields(refresh=True), _REGISTRY
        )
        return registry

    def cached_field_names(self) -> dict[str, str]:
        """Jira field id → name for every field id in a mapping, if this process has read the registry (no call)."""
        hit = self._cache.get("jira:fields")
        if hit is None:
            return {}
        registry: FieldRegistry = hit.value
        ids = {split_field_name(key)[0] for flow in self.config.flows for key in flow.mapping.custom_fields}
        return {i: info.name for i in ids if (info := registry.get(i)) is not None}

    def resolve_fields(self, flow: FlowConfig) -> dict[str, FieldTarget]:
        """Configured custom field names → ids and kinds, once per hour; ambiguity is a ``ConfigError``. A kept
        registry that does not know a configured field is read again first (the field may be new)."""
        started = utcnow()
        try:
            return self._resolve_fields(flow)
        except ConfigError:
            kept = self._cache.get("jira:fields")
            if kept is None or kept.read_at >= started:
                raise  # read from Jira just now: the configuration is wrong
            self.forget_jira_metadata()
            return self._resolve_fields(flow)

    def _resolve_fields(self, flow: FlowConfig) -> dict[str, FieldTarget]:
        registry = self.field_registry()
        targets: dict[str, FieldTarget] = {}
        for configured in flow.mapping.custom_fields:
            where = flow_path([f.name for f in self.config.flows], flow.name)
            field_id = registry.resolve_configured(configured, path=f"{where}.mapping.custom_fields.{configured}")
            info = registry.get(field_id)
            kind = _field_kind(info.custom_type if info else None, info.schema_type if info else None)
            targets[configured] = FieldTarget(
                field_id, kind, self._allowed_values(flow, field_id) if kind == "select" else None
            )
        return targets

    def _allowed_values(self, flow: FlowConfig, field_id: str) -> frozenset[str] | None:
        """Allowed options of a select field from createmeta for the flow's default project and issue type."""
        project = flow.mapping.project.default
        if project is None:
            return None

        def load() -> dict[str, frozenset[str]]:
            found: dict[str, frozenset[str]] = {}
            types = self.jira.create_issue_types(project)
            type_id = next((str(t["id"]) for t in types if t.get("name") == flow.mapping.issue_type), None)
            if type_id is None:
                return found
            for meta in self.jira.create_fields(project, type_id):
                values = meta.get("allowedValues")
                if isinstance(values, list):
                    found[str(meta.get("fieldId") or meta.get("key"))] = frozenset(
                        str(v.get("value") or v.get("name")) for v in values if isinstance(v, dict)
                    )
            return found

        allowed: dict[str, frozenset[str]] = self._cached(
            f"createmeta:{project}:{flow.mapping.issue_type}", JIRA_METADATA_TTL, load, _ALLOWED
        )
        return allowed.get(field_id)

    def mapping_context(self, flow: FlowConfig, *, with_jira: bool = True, with_fields: bool = True) -> MappingContext:
        """Lookups, plus (``with_jira``) Jira's projects and priorities and (``with_fields``) the resolved fields.

        The reads are independent: they go out at once (a run's first page waits for them); the fields' chain (the
        registry, then the select options from createmeta) runs beside the lookups, not after them."""
        lookups = self.config.lookups
        loads: dict[str, Callable[[], Any]] = {
            "suppliers": partial(self._lookup, "suppliers", lookups.suppliers if flow.supplier_field else None),
            "persons": partial(self._lookup, "persons", lookups.persons if flow.mapping.assignee else None),
            "projects": partial(self._lookup, "projects", lookups.projects),
        }
        if with_jira:
            loads["jira_projects"] = self._jira_projects
            loads["priorities"] = self._priorities
        if with_jira and with_fields:
            loads["fields"] = partial(self.resolve_fields, flow)
        loaded = all_at_once(loads)
        context = MappingContext(suppliers=loaded["suppliers"], persons=loaded["persons"], projects=loaded["projects"])
        if not with_jira:
            return context
        return replace(
            context,
            jira_projects=loaded["jira_projects"],
            priorities=loaded["priorities"],
            fields=loaded["fields"] if with_fields else {},
        )

    def _jira_projects(self) -> frozenset[str]:
        keys: frozenset[str] = self._cached(
            "jira:projects", JIRA_METADATA_TTL, lambda: frozenset(str(p["key"]) for p in self.jira.projects()), _SETS
        )
        return keys

    def _priorities(self) -> frozenset[str]:
        names: frozenset[str] = self._cached(
            "jira:priorities",
            JIRA_METADATA_TTL,
            lambda: frozenset(str(p["name"]) for p in self.jira.priorities()),
            _SETS,
        )
        return names

    # -- users -----------------------------------------------------------------------------------------------------

    def account_ids(self, emails: set[str], *, remember: bool = True) -> dict[str, str | None]:
        """email → accountId (None: no such Jira user); misses are cached in the store like hits unless ``remember``
        is False (a dry run or a check writes nothing). Emails not in the store are searched for at once."""
        known = self.store.users.cached(max_age=USER_CACHE_AGE, emails=emails)
        result: dict[str, str | None] = {e: known[e.lower()] for e in emails if e.lower() in known}
        unknown = sorted(e for e in emails if e.lower() not in known)
        mine, theirs = self._claim_searches(unknown) if remember else (unknown, {})
        failure: BaseException | None = None
        try:
            found = all_at_once({email: partial(self.jira.users.resolve, email) for email in mine})
            for email in mine:
                account = found[email].account_id if found[email].found else None
                if remember:
                    self.store.users.cache(email.lower(), account)
                result[email] = account
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if remember:
                self._settle_searches(mine, result, failure)
        # Every search this call owns is settled before it waits for another's: two calls never wait on each other.
        result.update({email: search.result() for email, search in theirs.items()})
        return result

    def _claim_searches(self, emails: list[str]) -> tuple[list[str], dict[str, Future[str | None]]]:
        """(the emails this call searches for, the searches other calls have in flight for the rest)."""
        mine: list[str] = []
        theirs: dict[str, Future[str | None]] = {}
        with self._lock:
            for email in emails:
                if (search := self._user_searches.get(email.lower())) is not None:
                    theirs[email] = search
                else:
                    self._user_searches[email.lower()] = Future()
                    mine.append(email)
        return mine, theirs

    def _settle_searches(
        self, emails: list[str], result: Mapping[str, str | None], failure: BaseException | None
    ) -> None:
        """Hand the answers to the calls waiting for them; a search that failed fails them with the same error (each
        page then decides on it as if it had searched itself)."""
        with self._lock:
            searches = [(email, self._user_searches.pop(email.lower())) for email in emails]
        for email, search in searches:
            if email in result:
                search.set_result(result[email])
            else:
                search.set_exception(failure or TransientError(f"no answer for Jira user {email}", system="jira"))


def all_at_once(calls: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent calls at once, each in a copy of this context (the run's rate-limit budget applies there);
    the first error is raised once all have ended."""
    if len(calls) <= 1:
        return {name: call() for name, call in calls.items()}
    with ThreadPoolExecutor(max_workers=min(len(calls), CALLS_AT_ONCE), thread_name_prefix="mlc-calls") as pool:
        futures = {name: submit_in_scope(pool, call) for name, call in calls.items()}
        wait(futures.values())
    return {name: future.result() for name, future in futures.items()}
