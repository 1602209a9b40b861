"""The simulator's state and operations: records, tokens, clock, faults and the request log.

One ``IfsSimulator`` backs one ASGI app (``app.state.sim``). Every method takes the lock, so tests may call them from
their own thread while uvicorn serves the app in another.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ml_connector.sim.ifs.odata import Bound, Predicate
from ml_connector.sim.ifs.odata_syntax import ENUM
from ml_connector.sim.ifs.options import SEED_FIELDS, FailNext, FaultSettings, IfsSimOptions
from ml_connector.sim.ifs.requestlog import RequestLog
from ml_connector.sim.ifs.schema import KINDS, EntityKind
from ml_connector.sim.ifs.seed import SeedGenerator, Values
from ml_connector.sim.ifs.store import (
    Key,
    KindStore,
    OrderSpec,
    Record,
    coerce,
    count_matching,
    to_wire,
)
from ml_connector.sim.ifs.tokens import TokenInfo, TokenStore
from ml_connector.sim.ifs.zones import ZoneView, naive_props, server_zone, wall_time
from ml_connector.sim.servertime import ServerTimeProfile
from ml_connector.sim.wire import FaultKind

CHANGED_AT = "Cf_Changed_At"
_KIND_LETTER = {
    "PurchaseOrder": "P",
    "PurchaseOrderLine": "L",
    "WorkOrder": "W",
    "Supplier": "S",
    "Person": "E",
    "Project": "J",
}


class SimError(Exception):
    """A refused control-API or simulator call; ``status`` and ``code`` become the error response."""

    def __init__(self, message: str, *, status: int = 400, code: str = "SIM_BAD_REQUEST") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True)
class FaultDecision:
    """What the gate does to one request before the handler sees it."""

    latency: float = 0.0
    kind: FaultKind | None = None  # a scripted fault (``wire.FaultKind``); None: none
    drop: bool = False  # a random drop (``drop_rate``), before the handler
    status: int | None = None
    hang_seconds: float = 0.0
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Throttled:
    """A request over the rate budget: the 429's ``Retry-After`` seconds (None: no header)."""

    retry_after: float | None


_ETAG = re.compile(r'(W/)?"[^"]*"')


def precondition_kind(if_match: str | None) -> str:
    """How a write's If-Match reads: ``none``, ``any`` (``*``), ``etag`` (one quoted tag) or ``malformed``."""
    if if_match is None:
        return "none"
    if if_match.strip() == "*":
        return "any"
    return "etag" if _ETAG.fullmatch(if_match.strip()) else "malformed"


def validation_message(exc: ValidationError) -> str:
    """Pydantic's errors as one short line each: ``field: what is wrong``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _objid(kind: str, n: int) -> str:
    """An Oracle-rowid-like 18-character objid."""
    return f"AAAS{_KIND_LETTER[kind]}AA{n:011X}"


class IfsSimulator:
    def __init__(self, options: IfsSimOptions | None = None) -> None:
        self.options = options or IfsSimOptions()
        self.lock = threading.RLock()
        self._clock_offset = 0.0
        self._tokens = TokenStore(self.time)
        self._log = RequestLog(self.options.request_log_limit, lambda: to_wire(self.now()))
        self._windows: dict[str, deque[float]] = {}
        self._preconditions: Counter[str] = Counter()
        self._count_cache: dict[tuple[str, str], tuple[int, int]] = {}
        self.stores: dict[str, KindStore] = {}
        self._faults = self.options.faults.model_copy(deep=True)
        self._fault_rng = random.Random(self._faults.seed)
        self.strict_if_match = self.options.strict_if_match
        self._seed_options = self.options
        self._generator = SeedGenerator(self.options)
        self._objids = 0
        self._zone = server_zone(self.options.time_zone)
        self._seed()

    # -- clock -----------------------------------------------------------------------------------------------------
    def time(self) -> float:
        """Simulator-clock epoch seconds (real time shifted by the clock offset)."""
        return time.time() + self._clock_offset

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), dt.UTC)

    @property
    def clock_offset(self) -> float:
        return self._clock_offset

    def set_clock(self, offset_seconds: float) -> None:
        with self.lock:
            self._clock_offset = float(offset_seconds)

    # -- time zone -------------------------------------------------------------------------------------------------
    @property
    def time_zone(self) -> str:
        return self._zone.key

    @property
    def custom_attributes_time_zone_aware(self) -> bool:
        return self._seed_options.custom_attributes_time_zone_aware

    def set_time_zone(self, name: str) -> None:
        """Move the server to zone ``name``. Naive values keep their wall time, as a real database's would."""
        with self.lock:
            try:
                self._zone = server_zone(name)
            except ValueError as exc:
                raise SimError(str(exc)) from None

    def zone_view(self, kind: EntityKind, *, aware_request: bool) -> ZoneView:
        """How a request with or without ``X-Ifs-Time-Zone-Aware-Request`` sees ``kind``'s date-times."""
        with self.lock:
            return ZoneView(self._zone, self._naive(kind), aware_request)

    def _naive(self, kind: EntityKind) -> frozenset[str]:
        return naive_props(kind.props, self._seed_options.custom_attributes_time_zone_aware)

    def _stamp(self, kind: EntityKind, name: str, instant: dt.datetime) -> dt.datetime:
        """``instant`` as attribute ``name`` stores it: the server's wall time for a naive attribute."""
        return wall_time(instant, self._zone) if name in self._naive(kind) else instant

    def _stored(self, kind: EntityKind, values: Values) -> Values:
        out = dict(values)
        for name in self._naive(kind):
            if isinstance(out.get(name), dt.datetime):
                out[name] = self._stamp(kind, name, out[name])
        return out

    # -- seeding ---------------------------------------------------------------------------------------------------
    def reset(self, **seed_fields: Any) -> dict[str, int]:
        """Reseed deterministically (any subset of the seed options), restore faults, settings and clock, clear the log.

        Issued tokens stay valid, so a client in the middle of a test need not log in again."""
        unknown = set(seed_fields) - SEED_FIELDS
        if unknown:
            raise SimError(
                f"not seed options: {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(SEED_FIELDS))})"
            )
        with self.lock:
            try:
                merged = self.options.model_validate({**self.options.model_dump(), **seed_fields})
            except ValidationError as exc:
                raise SimError(f"invalid seed options: {validation_message(exc)}") from None
            self._seed_options = merged
            self._generator = SeedGenerator(merged)
            self._faults = self.options.faults.model_copy(deep=True)
            self._fault_rng = random.Random(self._faults.seed)
            self._clock_offset = 0.0
            self._zone = server_zone(merged.time_zone)
            self.strict_if_match = self.options.strict_if_match
            self._windows.clear()
            self._preconditions.clear()
            self._log.clear()
            self._seed()
            return self.sizes()

    def sizes(self) -> dict[str, int]:
        with self.lock:
            return {name: len(store.records) for name, store in self.stores.items()}

    def _seed(self) -> None:
        """Generate every kind, then load each store in one go (one sort per index instead of n inserts)."""
        self.stores = {name: KindStore(kind) for name, kind in KINDS.items()}
        self._count_cache.clear()
        self._objids = 0
        gen, o = self._generator, self._seed_options
        batches: dict[str, list[Record]] = {name: [] for name in KINDS}
        old = o.anchor - dt.timedelta(days=400)

        def add(kind_name: str, values: Values, version: dt.datetime) -> None:
            batches[kind_name].append(self._new_record(kind_name, self._stored(KINDS[kind_name], values), version))

        for _ in range(o.suppliers):
            add("Supplier", gen.supplier(), old)
        for values in gen.people():
            add("Person", values, old)
        for _ in range(o.projects):
            add("Project", gen.project(), old)
        for _ in range(o.purchase_orders):
            order, lines = gen.purchase_order()
            add("PurchaseOrder", order, order[CHANGED_AT])
            for line in lines:
                add("PurchaseOrderLine", line, order[CHANGED_AT])
        for _ in range(o.work_orders):
            work_order = gen.work_order()
            add("WorkOrder", work_order, work_order[CHANGED_AT])
        for name, records in batches.items():
            self.stores[name].load(records)

    # -- records ---------------------------------------------------------------------------------------------------
    def _new_record(self, kind_name: str, values: Values, objversion: dt.datetime) -> Record:
        kind = KINDS[kind_name]
        full = {name: values.get(name) for name in kind.props}
        self._objids += 1
        key = tuple(full[k] for k in kind.keys)
        return Record(kind, key, full, _objid(kind_name, self._objids), objversion.replace(microsecond=0))

    def _insert(self, kind_name: str, values: Values, objversion: dt.datetime) -> Record:
        record = self._new_record(kind_name, values, objversion)
        self.stores[kind_name].insert(record)
        return record

    def _bump_version(self, old: dt.datetime) -> dt.datetime:
        """The next objversion: now, but strictly after the previous one even within the same second."""
        now = self.now().replace(microsecond=0)
        return now if now > old else old + dt.timedelta(seconds=1)

    def write(self, kind_name: str, key: Key, changes: Mapping[str, Any], *, state: str | None = None) -> Record:
        """Apply typed ``changes`` as one write: new objversion and ``Cf_Changed_At`` (unless given explicitly)."""
        with self.lock:
            store = self.stores[kind_name]
            old = store.records[key]
            values = dict(old.values)
            values.update(changes)
            if state is not None:
                values["Objstate"] = state
            if CHANGED_AT in store.kind.props and CHANGED_AT not in changes:
                values[CHANGED_AT] = self._stamp(store.kind, CHANGED_AT, self.now().replace(microsecond=0))
            objversion = self._bump_version(old.objversion)
            new = Record(store.kind, key, values, old.objid, objversion)
            store.replace(old, new)
            if kind_name == "PurchaseOrderLine":  # a custom event keeps the header's change stamp honest
                parent = (values["OrderNo"],)
                if parent in self.stores["PurchaseOrder"].records:
                    self.write("PurchaseOrder", parent, {})
            return new

    def create_record(self, kind_name: str, values: Mapping[str, Any], *, touch_parent: bool = True) -> Record:
        """Insert a record as IFS would on create (objversion and change stamp = now)."""
        with self.lock:
            store = self.stores[kind_name]
            full = dict(values)
            now = self.now().replace(microsecond=0)
            if CHANGED_AT in store.kind.props and full.get(CHANGED_AT) is None:
                full[CHANGED_AT] = self._stamp(store.kind, CHANGED_AT, now)
            key = store.key_of(full)
            if key in store.records:
                raise SimError(f"{kind_name} {key!r} already exists", status=409, code="SIM_CONFLICT")
            record = self._insert(kind_name, full, now)
            parent = self.stores["PurchaseOrder"].records
            if kind_name == "PurchaseOrderLine" and touch_parent and (full["OrderNo"],) in parent:
                self.write("PurchaseOrder", (full["OrderNo"],), {})
            return record

    def get(self, kind_name: str, key: Key) -> Record | None:
        with self.lock:
            return self.stores[kind_name].records.get(key)

    # -- control-API operations --------------------------------------------------------------------------------------
    def _kind(self, entity: str) -> EntityKind:
        kind = KINDS.get(entity)
        if kind is None:
            raise SimError(f"unknown entity {entity!r}; one of {', '.join(KINDS)}", status=404, code="SIM_NOT_FOUND")
        return kind

    def parse_key(self, entity: str, text: str | Key | list[Any] | int) -> Key:
        """A control-API key: the plain value for single keys (``PO-000001``, ``1001``), a JSON array for
        composite ones (``["PO-000001","1","1"]``), or already a tuple/list."""
        kind = self._kind(entity)
        if isinstance(text, tuple | list):
            parts = list(text)
        elif len(kind.keys) > 1:
            try:
                parts = json.loads(str(text))
            except ValueError:
                raise SimError(f"{entity} has a composite key; pass a JSON array of {list(kind.keys)}") from None
            if not isinstance(parts, list):
                raise SimError(f"{entity} has a composite key; pass a JSON array of {list(kind.keys)}")
        else:
            parts = [text]
        if len(parts) != len(kind.keys):
            raise SimError(f"{entity} key needs {len(kind.keys)} part(s): {list(kind.keys)}")
        key: list[Any] = []
        for name, part in zip(kind.keys, parts, strict=True):
            if kind.props[name] == "int":
                try:
                    key.append(int(part))
                except (TypeError, ValueError):
                    raise SimError(f"{entity} key {name} is an integer, got {part!r}") from None
            else:
                key.append(str(part))
        return tuple(key)

    def _typed_changes(self, kind: EntityKind, changes: Mapping[str, Any], *, allow_keys: bool) -> dict[str, Any]:
        typed: dict[str, Any] = {}
        for name, value in changes.items():
            prop_kind = kind.props.get(name)
            if prop_kind is None:
                raise SimError(f"{kind.name} has no field {name!r}")
            if name in kind.keys and not allow_keys:
                raise SimError(f"{name} is a key of {kind.name} and cannot be edited")
            if prop_kind == ENUM:
                if value not in kind.states:
                    raise SimError(f"{name} must be one of {', '.join(kind.states)}, got {value!r}")
                typed[name] = value
                continue
            try:
                typed[name] = coerce(f"{kind.name}.{name}", prop_kind, value)
            except ValueError as exc:
                raise SimError(str(exc)) from None
            if isinstance(typed[name], dt.datetime):  # control-API values are instants
                typed[name] = self._stamp(kind, name, typed[name])
        return typed

    def raw(self, record: Record, kind_name: str) -> dict[str, Any]:
        out = dict(record.wire)
        out["objid"] = record.objid
        out["objversion"] = record.objversion_text()
        out["entity"] = kind_name
        return out

    def get_raw(self, entity: str, key: Any) -> dict[str, Any]:
        with self.lock:
            k = self.parse_key(entity, key)
            record = self.stores[entity].records.get(k)
            if record is None:
                raise SimError(f"no {entity} with key {k!r}", status=404, code="SIM_NOT_FOUND")
            return self.raw(record, entity)

    def edit(self, entity: str, key: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Edit as an IFS user would: any non-key field, including ``Objstate``; bumps objversion and the stamp."""
        with self.lock:
            kind = self._kind(entity)
            k = self.parse_key(entity, key)
            if k not in self.stores[entity].records:
                raise SimError(f"no {entity} with key {k!r}", status=404, code="SIM_NOT_FOUND")
            return self.raw(self.write(entity, k, self._typed_changes(kind, changes, allow_keys=False)), entity)

    def bulk_edit(self, entity: str, keys: Iterable[Any], changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.lock:
            return [self.edit(entity, key, changes) for key in keys]

    def create(
        self,
        entity: str,
        *,
        count: int | None = None,
        values: Mapping[str, Any] | None = None,
        lines: int | None = None,
    ) -> list[dict[str, Any]]:
        """Create ``count`` generated records, or one generated record overlaid with ``values``.

        Purchase orders come with 1-3 generated lines (``lines`` fixes the number)."""
        with self.lock:
            kind = self._kind(entity)
            if (count is None) == (values is None):
                raise SimError('give either "count" or "values"')
            if count is not None and not 0 <= count <= 1_000_000:
                raise SimError('"count" must be between 0 and 1000000')
            created: list[dict[str, Any]] = []
            for _ in range(count if count is not None else 1):
                created.extend(self._create_one(kind, values or {}, lines))
            return created

    def _create_one(self, kind: EntityKind, overrides: Mapping[str, Any], lines: int | None) -> list[dict[str, Any]]:
        gen, now = self._generator, self.now()
        typed = self._typed_changes(kind, overrides, allow_keys=True)
        extra: list[Values] = []
        if kind.name == "PurchaseOrder":
            base, extra = gen.purchase_order(now=now, lines=lines)
            if "OrderNo" in typed:
                for line in extra:
                    line["OrderNo"] = typed["OrderNo"]
        elif kind.name == "WorkOrder":
            base = gen.work_order(now=now)
        elif kind.name == "Supplier":
            base = gen.supplier()
        elif kind.name == "Person":
            base = gen.person()
        elif kind.name == "Project":
            base = gen.project()
        else:  # PurchaseOrderLine
            order_no = typed.get("OrderNo")
            if (order_no,) not in self.stores["PurchaseOrder"].records:
                raise SimError("a PurchaseOrderLine needs the OrderNo of an existing PurchaseOrder")
            existing = [k for k in self.stores["PurchaseOrderLine"].records if k[0] == order_no]
            template = gen.purchase_order(now=now, lines=1)[1][0]
            gen.counters["PurchaseOrder"] -= 1  # the template order itself is not created
            base = {**template, "OrderNo": order_no, "LineNo": str(len(existing) + 1)}
        base.update(typed)
        if CHANGED_AT in kind.props and CHANGED_AT not in typed:
            base[CHANGED_AT] = None  # set to now by create_record
        out = [self.raw(self.create_record(kind.name, base), kind.name)]
        for line in extra:  # written in the same transaction as their order
            self.create_record("PurchaseOrderLine", line, touch_parent=False)
        return out

    # -- queries ---------------------------------------------------------------------------------------------------
    def query(
        self,
        kind_name: str,
        *,
        predicate: Predicate | None,
        bounds: tuple[Bound, ...],
        order: OrderSpec,
        after: tuple[Any, ...] | None,
        skip: int,
        limit: int,
    ) -> tuple[list[Record], bool]:
        """Up to ``limit`` matching records in ``order`` after the sort key ``after``; and whether more match."""
        with self.lock:
            store = self.stores[kind_name]
            rows: list[Record] = []
            for record in store.scan(order, after=after, bounds=bounds):
                if predicate is not None and not predicate(record.values):
                    continue
                if skip:
                    skip -= 1
                    continue
                if len(rows) == limit:
                    return rows, True
                rows.append(record)
            return rows, False

    def count(self, kind_name: str, predicate: Predicate | None, cache_key: str) -> int:
        with self.lock:
            store = self.stores[kind_name]
            cached = self._count_cache.get((kind_name, cache_key))
            if cached is not None and cached[0] == store.version:
                return cached[1]
            n = count_matching(store, predicate)
            if len(self._count_cache) > 256:
                self._count_cache.clear()
            self._count_cache[(kind_name, cache_key)] = (store.version, n)
            return n

    # -- tokens ----------------------------------------------------------------------------------------------------
    def issue_token(
        self, client_id: str | None = None, scope: str = "openid microprofile-jwt", issuer: str = ""
    ) -> tuple[str, int]:
        """A new access token for ``client_id`` (default: the configured client) and its lifetime in seconds."""
        with self.lock:
            client_id = client_id or self.options.client_id
            lifetime = self._faults.token_lifetime_seconds or self.options.token_expires_in
            issuer = issuer or f"/auth/realms/{self.options.realm}"
            return self._tokens.issue(client_id, scope, issuer, lifetime), lifetime

    def check_token(self, token: str | None) -> tuple[TokenInfo | None, str]:
        """(info, "") for a valid token, else (info or None, why it is refused)."""
        with self.lock:
            return self._tokens.check(token)

    def revoke_tokens(self) -> int:
        with self.lock:
            return self._tokens.revoke_all()

    # -- run-time settings -------------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        with self.lock:
            return {"strict_if_match": self.strict_if_match}

    def set_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change behaviour switches at run time (``strict_if_match``); ``reset`` restores the start-up options."""
        unknown = set(changes) - {"strict_if_match"}
        if unknown:
            raise SimError(f"not run-time settings: {', '.join(sorted(unknown))} (allowed: strict_if_match)")
        strict = changes.get("strict_if_match", self.strict_if_match)
        if not isinstance(strict, bool):
            raise SimError(f"strict_if_match must be true or false, got {strict!r}")
        with self.lock:
            self.strict_if_match = strict
            return self.settings()

    # -- faults ----------------------------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultSettings:
        with self.lock:
            return self._faults.model_copy(deep=True)

    @property
    def server_time_profile(self) -> ServerTimeProfile | None:
        """The one fault every read asks for, without copying all the settings."""
        with self.lock:
            return self._faults.server_time_profile

    def set_faults(self, **changes: Any) -> FaultSettings:
        """Change some fault settings; the others keep their values. ``seed`` also restarts the fault RNG."""
        with self.lock:
            try:
                merged = FaultSettings.model_validate({**self._faults.model_dump(), **changes})
            except ValidationError as exc:
                raise SimError(f"invalid faults: {validation_message(exc)}") from None
            self._faults = merged
            if "seed" in changes:
                self._fault_rng = random.Random(merged.seed)
            if "rate_limit_per_minute" in changes:
                self._windows.clear()
            return merged.model_copy(deep=True)

    def decide(self, path: str, *, projection: bool, method: str = "GET") -> FaultDecision:
        """Scripted failures first, then latency, then random drops (projection calls only)."""
        with self.lock:
            f = self._faults
            for i, item in enumerate(f.fail_next):
                if item.matches(method, path, projection=projection):
                    remaining = item.count - 1
                    rest = list(f.fail_next)
                    if remaining:
                        rest[i] = FailNext.model_validate({**item.model_dump(), "count": remaining})
                    else:
                        del rest[i]
                    self._faults = f.model_copy(update={"fail_next": rest})
                    return FaultDecision(
                        latency=f.latency_ms / 1000,
                        kind=item.effective_kind,
                        status=item.status or None,
                        hang_seconds=item.hang_seconds,
                        retry_after=item.retry_after,
                        code=item.code,
                        message=item.message,
                    )
            drop = projection and f.drop_rate > 0 and self._fault_rng.random() < f.drop_rate
            return FaultDecision(latency=f.latency_ms / 1000, drop=drop)

    def random_503(self) -> bool:
        with self.lock:
            rate = self._faults.error_503_rate
            return rate > 0 and self._fault_rng.random() < rate

    def concurrent_edits(self, kind_name: str, keys: list[Key]) -> int:
        """The concurrent-edit fault: bump each just-read record with probability ``concurrent_edit_rate``, as a
        user saving it between the client's read and write would; the client's ETag is then stale (412)."""
        with self.lock:
            rate = self._faults.concurrent_edit_rate
            if rate <= 0:
                return 0
            bumped = [key for key in keys if self._fault_rng.random() < rate]
            for key in bumped:
                self.write(kind_name, key, {})
            return len(bumped)

    def admit(self, client_id: str) -> Throttled | None:
        """Count a request against the client's rolling-minute budget; None when admitted, else the 429 to send."""
        with self.lock:
            budget = self._faults.rate_limit_per_minute
            if budget is None:
                return None
            now = self.time()
            window = self._windows.setdefault(client_id, deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= budget:
                configured = self._faults.retry_after_seconds
                if configured != "window":
                    return Throttled(configured)
                return Throttled(float(max(1, math.ceil(window[0] + 60 - now))))
            window.append(now)
            return None

    # -- request log -----------------------------------------------------------------------------------------------
    def log_request(
        self, *, method: str, path: str, query: str, endpoint: str, if_match: str | None, client_id: str | None
    ) -> dict[str, Any]:
        with self.lock:
            return self._log.add(
                method=method, path=path, query=query, endpoint=endpoint, if_match=if_match, client_id=client_id
            )

    def note_precondition(self, write: str, if_match: str | None) -> None:
        """Tally the If-Match of a write (``PATCH`` or ``action``) as ``etag``, ``any`` (``*``), ``none`` or
        ``malformed``; kept until ``reset``, not cleared with the log, so a test can check a whole run."""
        with self.lock:
            self._preconditions[f"{write} {precondition_kind(if_match)}"] += 1

    def preconditions(self) -> dict[str, int]:
        with self.lock:
            return dict(self._preconditions)

    def finish_request(self, entry: dict[str, Any], status: int | None) -> None:
        with self.lock:
            entry["status"] = status

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self._log.entries]

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self._log.counts)

    def clear_requests(self) -> None:
        with self.lock:
            self._log.clear()
