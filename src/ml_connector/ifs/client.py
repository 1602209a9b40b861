"""``IfsClient``: reads and writes IFS Cloud projections over OData v4.

Paging. Every collection read is ordered totally (the requested ``$orderby`` followed by the key fields it lacks)
and sends ``Prefer: odata.maxpagesize``. ``@odata.nextLink`` is followed when the server gives one; when it gives
none but the page is full (or the server did not confirm the page size it applied), the next page is requested by
keyset, ``(<filter>) and (<rows strictly after the last row in the order>)``, never by ``$skip`` over a set that
changes between pages. A nextLink seen twice, a link to another origin, or a page made only of rows already
returned stops the iteration with ``PermanentError`` instead of looping. Rows already returned in this iteration are
dropped (counted in ``Page.duplicates``) so a caller sees each key at most once per iteration.

Writes always carry ``If-Match`` with the ETag the caller read (never ``*``); a stale one raises
``ConcurrencyConflict`` (412). Because the precondition makes a repeated write fail rather than apply twice,
PATCH and bound actions are retried on transient errors like reads.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urljoin

import httpx2
import structlog

from ml_connector.config.connections import IFS_MAX_PAGE_SIZE, IfsConnection
from ml_connector.errors import MalformedResponse, PermanentError
from ml_connector.http import ApiSession, BearerAuth, CallObserver, Pacer, build_client, response_json
from ml_connector.http.ratelimit import submit_in_scope
from ml_connector.ifs.auth import TokenProvider
from ml_connector.ifs.metadata import ServiceMetadata, parse_metadata
from ml_connector.ifs.odata import (
    QUERY_SAFE,
    Compare,
    EntitySetRef,
    Expr,
    Key,
    KeyValue,
    OrderKey,
    Raw,
    Scalar,
    and_,
    check_name,
    encode_query,
    entity_path,
    filter_text,
    key_match,
    keyset_after,
    or_,
    parse_orderby,
    select_list,
    total_order,
)
from ml_connector.ifs.seen import SeenKeys

log = structlog.get_logger("ml_connector.ifs")

SYSTEM = "ifs"
# Encoded $filter length per chunk when reading many keys at once: well below the 8 KiB request-line limit common
# in front of IFS (and the 2 KiB some proxies keep), with room for the path, $select and $orderby.
DEFAULT_MAX_FILTER_CHARS = 1800
CHUNKS_IN_FLIGHT = 4  # key-list reads of one call sent at once (the adaptive in-flight limit of IFS starts at 4)
# Where IFS Cloud serves its projections, under the tenant URL.
PROJECTION_PATH = "main/ifsapplications/projection/v1"

# Sent as "true" on every call: time-zone-aware date-times then travel as instants (ifs-api.md §3.9).
TIME_ZONE_AWARE_HEADER = "X-Ifs-Time-Zone-Aware-Request"
T = TypeVar("T")
Filter = Expr | str | None
Record = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a collection read; the engine commits per page."""

    rows: list[Record]
    number: int  # 1-based
    next_link: str | None  # the server's link to the next page, if it sent one
    keyset: bool  # True when this page was requested by keyset (the server gave no link)
    duplicates: int = 0  # rows dropped because an earlier page of this iteration already returned their key


def _key_tuple(row: Mapping[str, Any], key_fields: Sequence[str]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in key_fields)


def _seen_key(key_fields: Sequence[str]) -> Callable[[Mapping[str, Any]], Any]:
    """What an iteration remembers of each row to drop repeats: the bare value of a single key field, else the
    tuple (``SeenKeys`` keeps a fingerprint of it)."""
    if len(key_fields) == 1:
        (field,) = key_fields
        return lambda row: row.get(field)
    return lambda row: _key_tuple(row, key_fields)


def _preference_applied(response: httpx2.Response) -> int | None:
    """The ``odata.maxpagesize`` the server says it applied, if it said so."""
    for part in response.headers.get("Preference-Applied", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize" and value.strip().strip('"').isdigit():
            return int(value.strip().strip('"'))
    return None


def _parse_metadata(response: httpx2.Response) -> ServiceMetadata:
    try:
        return parse_metadata(response.content)
    except (ValueError, ET.ParseError) as exc:
        media = response.headers.get("Content-Type", "?").split(";", 1)[0]
        raise MalformedResponse(
            f"expected a CSDL document from GET {response.request.url.path}, got {media} ({exc})", system=SYSTEM
        ) from None


def _parse_count(response: httpx2.Response) -> int:
    """``$count`` answers a bare number (text/plain); some gateways wrap it as ``{"value": n}``."""
    text = response.text.strip()
    if text.isdigit():
        return int(text)
    body = response_json(response, system=SYSTEM, expect=None)
    if isinstance(body, dict) and isinstance(body.get("value"), int):
        return int(body["value"])
    raise MalformedResponse(f"$count from GET {response.request.url.path} answered {text[:40]!r}", system=SYSTEM)


class MetadataKeeper(Protocol):
    """Where ``$metadata`` documents are kept beyond this client (the store), so a new process need not read them."""

    def load(self, projection: str) -> bytes | None: ...

    def keep(self, projection: str, document: bytes) -> None: ...


class IfsClient:
    """Facade over one IFS tenant; thread-safe for concurrent calls (the HTTP pool and token cache are shared)."""

    def __init__(
        self,
        session: ApiSession,
        *,
        page_size: int = 1000,
        tokens: TokenProvider | None = None,
        max_filter_chars: int = DEFAULT_MAX_FILTER_CHARS,
        keeper: MetadataKeeper | None = None,
    ) -> None:
        if not 1 <= page_size <= IFS_MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{IFS_MAX_PAGE_SIZE}")
        self.session = session
        self.tokens = tokens
        self.page_size = page_size
        self.max_filter_chars = max_filter_chars
        self._metadata: dict[str, ServiceMetadata] = {}
        self._metadata_lock = threading.Lock()
        self._metadata_loading: dict[str, threading.Lock] = {}  # one per projection: its single read in progress
        self._keeper = keeper
        base = session.client.base_url
        self._origin = (base.scheme, base.host, base.port)
        self._base_path = base.path

    @classmethod
    def from_connection(
        cls,
        connection: IfsConnection,
        *,
        transport: httpx2.BaseTransport | None = None,
        observer: CallObserver | None = None,
        pacer: Pacer | None = None,
        keeper: MetadataKeeper | None = None,
    ) -> IfsClient:
        tokens = TokenProvider.for_connection(connection, transport=transport)
        headers = {TIME_ZONE_AWARE_HEADER: "true"}  # zone-aware timestamps as instants, never server-local time
        base = f"{connection.base_url}/{PROJECTION_PATH}/"
        client = build_client(
            base, connection.http, auth=BearerAuth(tokens, system=SYSTEM), headers=headers, transport=transport
        )
        session = ApiSession(client, system=SYSTEM, settings=connection.http, pacer=pacer, observer=observer)
        return cls(session, page_size=connection.page_size, tokens=tokens, keeper=keeper)

    def close(self) -> None:
        self.session.close()
        if self.tokens is not None:
            self.tokens.close()

    def __enter__(self) -> IfsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ plumbing

    def _request_parsed(
        self,
        method: str,
        url: str,
        parse: Callable[[httpx2.Response], T],
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> T:
        """Send with the IFS pace key, ``parse`` inside the retry loop (a malformed answer to a read is retried)."""
        return self.session.request_parsed(
            method, url, parse, json=json, headers=headers, idempotent=idempotent, pace_keys=("ifs",)
        )

    def _object(self, response: httpx2.Response) -> Record:
        body: Record = response_json(response, system=SYSTEM, expect=dict)
        return body

    def _object_or_none(self, response: httpx2.Response) -> Record | None:
        """The JSON object of an answer that may also come without a body (204 to a write)."""
        if response.status_code == 204 or not response.content:
            return None
        return self._object(response)

    def _collection(self, response: httpx2.Response) -> tuple[httpx2.Response, list[Record], Any]:
        """(response, rows, nextLink) of a collection page; rows and link checked to be what OData promises."""
        body = response_json(response, system=SYSTEM, expect=dict, require=("value",))
        rows, link = body["value"], body.get("@odata.nextLink")
        where = f"GET {response.request.url.path}"
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise MalformedResponse(f"collection from {where} has a value that is not a list of objects", system=SYSTEM)
        if link is not None and not isinstance(link, str):
            raise MalformedResponse(f"collection from {where} has a nextLink that is not a string", system=SYSTEM)
        return response, rows, link

    @staticmethod
    def _url(path: str, options: Mapping[str, str | int | None]) -> str:
        query = encode_query(options)
        return f"{path}?{query}" if query else path

    def _check_link(self, link: str, current: str) -> str:
        """Resolve a nextLink and refuse one outside our API: it would receive our bearer token."""
        absolute = urljoin(str(self.session.client.base_url.join(current)), link)
        url = httpx2.URL(absolute)
        if (url.scheme, url.host, url.port) != self._origin or not url.path.startswith(self._base_path):
            raise PermanentError(f"nextLink leaves the IFS API ({url.scheme}://{url.host}{url.path})", system=SYSTEM)
        return absolute

    # ------------------------------------------------------------------------------------------------ discovery

    def metadata(self, projection: str) -> ServiceMetadata:
        """``<Projection>.svc/$metadata``, parsed and cached for the life of the client; read once even when several
        threads ask at once (a page's concurrent line reads), the others wait for that read."""
        check_name(projection)
        with self._metadata_lock:
            cached = self._metadata.get(projection)
            loading = self._metadata_loading.setdefault(projection, threading.Lock())
        if cached is not None:
            return cached
        with loading:
            with self._metadata_lock:
                cached = self._metadata.get(projection)
            if cached is not None:
                return cached  # read by the thread this one waited for
            parsed = self._kept_metadata(projection)
            if parsed is None:
                document, parsed = self._request_parsed(
                    "GET",
                    f"{projection}.svc/$metadata",
                    lambda r: (r.content, _parse_metadata(r)),
                    headers={"Accept": "application/xml"},
                )
                if self._keeper is not None:
                    self._keeper.keep(projection, document)
            with self._metadata_lock:
                self._metadata[projection] = parsed
            return parsed

    def _kept_metadata(self, projection: str) -> ServiceMetadata | None:
        """The document the keeper holds, parsed (None: none, or one that no longer parses)."""
        document = self._keeper.load(projection) if self._keeper is not None else None
        if document is None:
            return None
        try:
            return parse_metadata(document)
        except (ValueError, ET.ParseError):
            return None

    def key_fields(self, entity_set: str) -> tuple[str, ...]:
        ref = EntitySetRef.parse(entity_set)
        return self.metadata(ref.projection).keys(ref.name)

    # ------------------------------------------------------------------------------------------------ reading

    def iter_pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | str | None = None,
        filter: Filter = None,
        orderby: Sequence[str | OrderKey] | str | None = None,
        key_fields: Sequence[str] | None = None,
        page_size: int | None = None,
        expand: str | None = None,
        first_page_size: int | None = None,
    ) -> Iterator[Page]:
        """Pages of ``entity_set`` matching ``filter``, each key at most once (see the module docstring).

        ``first_page_size`` asks for a smaller first page (``Prefer`` is per request), so a caller that works on
        each page while the next is read can start sooner; each page after it asks for twice the rows of the one
        before, up to ``page_size``, so that work grows as fast as the reads can feed it."""
        ref = EntitySetRef.parse(entity_set)
        size = page_size or self.page_size
        asked = min(first_page_size or size, size)
        if not 1 <= asked <= size <= IFS_MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{IFS_MAX_PAGE_SIZE}")
        keys = tuple(key_fields) if key_fields else self.key_fields(entity_set)
        order = total_order(parse_orderby(orderby), keys)
        fields = select_list(select)
        if fields is not None:  # keyset and dedupe need the order and key values in every row
            names = fields.split(",")
            fields = ",".join(names + [o.field for o in order if o.field not in names])
        base_filter = filter_text(filter)
        options: dict[str, str | int | None] = {
            "$select": fields,
            "$filter": base_filter,
            "$orderby": ",".join(o.render() for o in order),
            "$expand": expand,
        }
        url = self._url(ref.path, options)
        seen_links: set[str] = set()
        seen_keys = SeenKeys()
        seen_key = _seen_key(keys)
        number = 0
        via_keyset = False
        ends: set[tuple[Any, ...]] = set()  # the order values each page ended at
        while True:
            headers = {"Prefer": f"odata.maxpagesize={asked}"}
            response, rows, link = self._request_parsed("GET", url, self._collection, headers=headers)
            number += 1
            fresh = [row for row in rows if seen_keys.add(seen_key(row))]
            ends_at = tuple(rows[-1].get(o.field) for o in order) if rows else ()
            # A page of rows already returned is legitimate when edits moved them behind the reader (a later
            # Cf_Changed_At: a place no page ended at); one that ends where a page ended before is a server going
            # round in circles.
            if rows and not fresh and ends_at in ends:
                raise PermanentError(
                    f"page {number} of {ref.path} repeats only rows already returned and ends where an earlier page "
                    "ended; stopping instead of looping",
                    system=SYSTEM,
                )
            ends.add(ends_at)
            log.debug("ifs.page", entity_set=ref.path, page=number, rows=len(rows), keyset=via_keyset, link=bool(link))
            yield Page(fresh, number, link, via_keyset, len(rows) - len(fresh))
            if link:
                next_url = self._check_link(str(link), url)
                if next_url in seen_links:
                    raise PermanentError(f"nextLink of {ref.path} repeats; stopping instead of looping", system=SYSTEM)
                seen_links.add(next_url)
                url, via_keyset, asked = next_url, False, min(size, 2 * asked)
                continue
            if not rows or seen_links:
                return  # an empty page, or a server that links its pages and sent no link this time: the end
            applied = _preference_applied(response)
            # A short page is the last one only if the server confirms it used our page size; otherwise it may
            # have cut at its own cap without a link, and one more (keyset) request settles it.
            if len(rows) < asked and applied is not None and applied >= asked:
                return
            asked = min(size, 2 * asked)
            last = rows[-1]
            after = keyset_after(order, self._typed_values(ref, order, last))
            options["$filter"] = filter_text(and_(Raw(base_filter) if base_filter else None, after))
            url, via_keyset = self._url(ref.path, options), True

    def iter_records(self, entity_set: str, **kwargs: Any) -> Iterator[Record]:
        """Rows of :meth:`iter_pages`, flattened."""
        for page in self.iter_pages(entity_set, **kwargs):
            yield from page.rows

    def _typed_values(self, ref: EntitySetRef, order: Sequence[OrderKey], row: Mapping[str, Any]) -> list[Scalar]:
        """The last row's order values typed from ``$metadata`` so each literal has the property's EDM type."""
        meta = self.metadata(ref.projection)
        values: list[Scalar] = []
        for o in order:
            if o.field not in row:
                raise PermanentError(
                    f"{ref.path} row lacks order field {o.field}; cannot page by keyset", system=SYSTEM
                )
            values.append(meta.typed_value(ref.name, o.field, row[o.field]))
        return values

    def count(self, entity_set: str, *, filter: Filter = None) -> int:
        """``<Set>/$count`` with an optional filter."""
        ref = EntitySetRef.parse(entity_set)
        url = self._url(entity_path(ref, None, "$count"), {"$filter": filter_text(filter)})
        return self._request_parsed("GET", url, _parse_count, headers={"Accept": "text/plain, application/json"})

    def get(self, entity_set: str, key: Key, *, select: Sequence[str] | str | None = None) -> tuple[Record, str]:
        """One entity by key and its ETag; ``NotFound`` when it does not exist."""
        url = self._url(entity_path(entity_set, key), {"$select": select_list(select)})
        response, record = self._request_parsed("GET", url, lambda r: (r, self._object(r)))
        record.pop("@odata.context", None)
        return record, self._etag_of(response, record, entity_set, key)

    @staticmethod
    def _etag_of(response: httpx2.Response, record: Mapping[str, Any] | None, entity_set: str, key: Key) -> str:
        etag = (record or {}).get("@odata.etag") or response.headers.get("ETag")
        if not etag:
            raise PermanentError(f"{entity_set}{dict(key)} came without an ETag", system=SYSTEM)
        return str(etag)

    def _chunks(self, terms: Iterable[Expr]) -> Iterator[Expr]:
        """Group ``or`` terms so each chunk's encoded filter stays within ``max_filter_chars``."""
        chunk: list[Expr] = []
        size = 0
        for term in terms:
            # as ``encode_query`` sends it inside an ``or`` (the last term's separator is counted too: a margin)
            cost = len(quote(f"({term.render()}) or ", safe=QUERY_SAFE))
            if chunk and size + cost > self.max_filter_chars:
                yield or_(*chunk)
                chunk, size = [], 0
            chunk.append(term)
            size += cost
        if chunk:
            yield or_(*chunk)

    def get_many_by_keys(
        self,
        entity_set: str,
        keys: Sequence[Key],
        *,
        select: Sequence[str] | str | None = None,
    ) -> dict[tuple[KeyValue, ...], tuple[Record, str]]:
        """Records and ETags of many keys in a few filtered collection reads; missing keys are simply absent.

        The result is keyed by the key values in the order of each key mapping's fields.
        """
        if not keys:
            return {}
        key_fields = tuple(keys[0].keys())
        if any(tuple(k.keys()) != key_fields for k in keys):
            raise ValueError("all keys must name the same fields in the same order")
        wanted = {tuple(k.values()) for k in keys}
        found: dict[tuple[KeyValue, ...], tuple[Record, str]] = {}
        unique = {tuple(k.values()): k for k in keys}.values()
        for chunk in self._chunks(key_match(k) for k in unique):
            for row in self.iter_records(entity_set, select=select, filter=chunk, key_fields=key_fields):
                key_values = _key_tuple(row, key_fields)
                if key_values in wanted and row.get("@odata.etag"):
                    row.pop("@odata.context", None)
                    found[key_values] = (row, str(row["@odata.etag"]))
        return found

    def children_by_parent(
        self,
        entity_set: str,
        parent_field: str,
        parent_values: Iterable[Scalar],
        *,
        select: Sequence[str] | str | None = None,
        filter: Filter = None,
        orderby: Sequence[str | OrderKey] | str | None = None,
        key_fields: Sequence[str] | None = None,
        page_size: int | None = None,
    ) -> dict[Any, list[Record]]:
        """Rows of a child set for many parents at once (e.g. PO lines of one page of orders), grouped by parent.

        The parent values are chunked into ``Field eq 'a' or Field eq 'b' ...`` filters of bounded URL length;
        every parent asked for is in the result, with an empty list when it has no children. ``page_size`` as in
        :meth:`iter_pages`.
        """
        check_name(parent_field)
        values = list(dict.fromkeys(parent_values))
        grouped: dict[Any, list[Record]] = {v: [] for v in values}

        def read(chunk: Expr) -> list[Record]:
            combined = and_(filter, chunk) if filter is not None else chunk
            return list(
                self.iter_records(
                    entity_set,
                    select=select,
                    filter=combined,
                    orderby=orderby,
                    key_fields=key_fields,
                    page_size=page_size,
                )
            )

        chunks = list(self._chunks(Compare(parent_field, "eq", v) for v in values))
        # The chunks are independent reads (each parent is in one chunk, so its rows keep the server's order): they
        # go out together, held to the pacing and the in-flight limit like any other call.
        with ThreadPoolExecutor(
            max_workers=max(1, min(CHUNKS_IN_FLIGHT, len(chunks))), thread_name_prefix="mlc-ifs"
        ) as pool:
            results = [submit_in_scope(pool, read, chunk) for chunk in chunks]
            for result in results:
                for row in result.result():
                    grouped.setdefault(row.get(parent_field), []).append(row)
        return grouped

    # ------------------------------------------------------------------------------------------------ writing

    @staticmethod
    def _write_headers(etag: str) -> dict[str, str]:
        if not etag or etag.strip() == "*":
            raise ValueError("a write needs the ETag read from the record (If-Match: * is never sent)")
        return {"If-Match": etag, "Content-Type": "application/json"}

    def patch(self, entity_set: str, key: Key, changes: Mapping[str, Any], etag: str) -> tuple[Record, str]:
        """PATCH ``changes`` with ``If-Match: etag``; returns the updated record and its new ETag.

        412 → ``ConcurrencyConflict``: read again (:meth:`get`) and re-apply if still needed.
        """
        for name in changes:
            check_name(name)
        headers = self._write_headers(etag) | {"Prefer": "return=representation"}
        path = entity_path(entity_set, key)
        response, record = self._request_parsed(
            "PATCH", path, lambda r: (r, self._object_or_none(r)), json=dict(changes), headers=headers, idempotent=True
        )
        if record is None:
            return self.get(entity_set, key)  # the server ignored return=representation
        record.pop("@odata.context", None)
        return record, self._etag_of(response, record, entity_set, key)

    def call_action(
        self,
        entity_set: str,
        key: Key,
        action: str,
        etag: str,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """POST a bound action (``PurchaseOrder_Release`` or fully qualified) with ``If-Match``.

        Returns the action's ``value`` (None for 204). An illegal transition is ``Rejected`` (400),
        a stale ETag ``ConcurrencyConflict`` (412).
        """
        ref = EntitySetRef.parse(entity_set)
        qualified = action if "." in action else f"IfsApp.{ref.projection}.{check_name(action)}"
        path = entity_path(ref, key, qualified)
        body = self._request_parsed(
            "POST",
            path,
            self._object_or_none,
            json=dict(params or {}),
            headers=self._write_headers(etag),
            idempotent=True,
        )
        return None if body is None else body.get("value", body)
