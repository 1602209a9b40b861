"""The IFS side: the IAM token, each projection's ``$metadata``, the selected fields, one read per entity set, the
write-back actions and the lookups. Reads only (``$top=1``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ml_connector.config.models import ConnectorConfig, FlowConfig, LookupConfig
from ml_connector.diagnostics.fixes import ifs_connection_fix, ifs_credentials_fix
from ml_connector.diagnostics.ifs_zones import check_cursor_zone
from ml_connector.diagnostics.results import FAIL, PASS, SKIP, Findings
from ml_connector.errors import AuthError, ConnectorError, NotFound, Rejected, TransientError
from ml_connector.ifs import IfsClient
from ml_connector.ifs.metadata import ServiceMetadata
from ml_connector.ifs.odata import EntitySetRef, encode_query
from ml_connector.reasons import flow_path

SAMPLE_USERS = 3
TENANT_DOWN = "check ifs.url and that the tenant is up"

Metadata = dict[str, ServiceMetadata | None]  # projection → its $metadata, None when it could not be read


def configured_lookups(config: ConnectorConfig) -> dict[str, LookupConfig]:
    lk = config.lookups
    return {n: s for n, s in (("suppliers", lk.suppliers), ("persons", lk.persons), ("projects", lk.projects)) if s}


def _top1(ifs: IfsClient, ref: EntitySetRef, *, select: Sequence[str], filter: str | None) -> None:
    """One ``$top=1`` read: proves read permission and that the server accepts the filter."""
    options: dict[str, str | int | None] = {"$top": 1, "$select": ",".join(select) or None, "$filter": filter}
    query = encode_query(options)
    ifs.session.request("GET", f"{ref.path}?{query}" if query else ref.path, pace_keys=("ifs",))


class IfsChecks:
    """The IFS checks; ``token_ok`` says afterwards whether IFS gave a token (samples are read only then)."""

    def __init__(self, config: ConnectorConfig, findings: Findings, ifs_factory: Callable[[], IfsClient]) -> None:
        self.config = config
        self.findings = findings
        self._ifs_factory = ifs_factory
        self.token_ok = False

    def run(self) -> None:
        try:
            ifs = self._ifs_factory()
        except ConnectorError as exc:
            self.findings.fail("ifs", "IFS client", exc, "fix the ifs: section of the config")
            return
        try:
            if not self._token(ifs):
                return
            self.token_ok = True
            metadata: Metadata = {}
            for ref in self._entity_sets():
                if ref.projection not in metadata:
                    metadata[ref.projection] = self._projection(ifs, ref.projection)
            for flow in self.config.flows:
                if flow.enabled:
                    self._flow(ifs, metadata, flow)
            self._lookups(ifs, metadata)
        finally:
            ifs.close()

    def _token(self, ifs: IfsClient) -> bool:
        cfg = self.config.ifs
        if ifs.tokens is None:
            self.findings.add("ifs", "IFS token", SKIP, "client has no token provider")
            return True
        try:
            ifs.tokens.token()
        except AuthError as exc:
            self.findings.fail("ifs", "IFS token", exc, ifs_credentials_fix(self.config))
            return False
        except (TransientError, ConnectorError) as exc:
            self.findings.fail("ifs", "IFS token", exc, ifs_connection_fix(self.config))
            return False
        self.findings.add("ifs", "IFS token", PASS, f"client {cfg.client_id} got a token from realm {cfg.realm}")
        return True

    def _entity_sets(self) -> Iterator[EntitySetRef]:
        for flow in self.config.flows:
            if not flow.enabled:
                continue
            yield EntitySetRef.parse(flow.entity_set)
            if flow.lines:
                yield EntitySetRef.parse(flow.lines.entity_set)
            if flow.writeback.enabled and flow.writeback.entity_set:
                yield EntitySetRef.parse(flow.writeback.entity_set)
        for spec in configured_lookups(self.config).values():
            yield EntitySetRef.parse(spec.entity_set)

    def _projection(self, ifs: IfsClient, projection: str) -> ServiceMetadata | None:
        name = f"projection {projection}"
        try:
            meta = ifs.metadata(projection)
        except AuthError as exc:
            fix = f"grant the IAM client's user a permission set that includes the projection {projection}"
            self.findings.fail("ifs", name, exc, fix)
            return None
        except (NotFound, Rejected) as exc:
            fix = f"check the projection name {projection!r} (case sensitive); is it installed on this tenant?"
            self.findings.fail("ifs", name, exc, fix)
            return None
        except ConnectorError as exc:
            self.findings.fail("ifs", name, exc, TENANT_DOWN)
            return None
        self.findings.add("ifs", name, PASS, f"$metadata read ({len(meta.entity_sets)} entity sets)")
        return meta

    def _fields_present(self, meta: ServiceMetadata, ref: EntitySetRef, fields: Sequence[str], where: str) -> bool:
        name = f"{ref.path} fields"
        try:
            props = meta.entity_set(ref.name).entity_type.properties
        except KeyError:
            self.findings.add(
                "ifs",
                name,
                FAIL,
                f"entity set {ref.name} is not in {ref.projection}.svc",
                f"correct {where}; entity sets there: {', '.join(sorted(meta.entity_sets)[:10])}",
            )
            return False
        missing = [f for f in dict.fromkeys(fields) if f not in props]
        if missing:
            hints = []
            for f in missing:
                near = [p for p in props if p.lower() == f.lower()]
                hints.append(f"{f} (did you mean {near[0]}?)" if near else f)
            self.findings.add(
                "ifs",
                name,
                FAIL,
                f"not in $metadata: {', '.join(hints)}",
                f"remove or correct them in {where} (IFS property names are case sensitive)",
            )
            return False
        self.findings.add("ifs", name, PASS, f"{len(dict.fromkeys(fields))} selected fields present")
        return True

    def _flow(self, ifs: IfsClient, metadata: Metadata, flow: FlowConfig) -> None:
        where = flow_path([f.name for f in self.config.flows], flow.name)
        ref = EntitySetRef.parse(flow.entity_set)
        meta = metadata.get(ref.projection)
        if meta is None:
            self.findings.add("ifs", f"{flow.name}: read", SKIP, f"projection {ref.projection} is not usable")
            return
        select = flow.read_fields()
        fields_ok = self._fields_present(meta, ref, select, f"{where}.select / key / cursor_field")
        self._flow_read(ifs, ref, where, flow, select if fields_ok else [flow.key])
        if fields_ok and flow.detection == "cursor":
            check_cursor_zone(ifs, flow, self.config.ifs, self.findings)
        if flow.lines:
            lref = EntitySetRef.parse(flow.lines.entity_set)
            lmeta = metadata.get(lref.projection)
            if lmeta is not None:
                self._fields_present(
                    lmeta, lref, [flow.lines.parent_key, *flow.lines.select], f"{where}.lines.select / parent_key"
                )
        if flow.writeback.enabled:
            self._flow_writeback(metadata, where, flow)

    def _flow_read(self, ifs: IfsClient, ref: EntitySetRef, where: str, flow: FlowConfig, select: list[str]) -> None:
        name = f"{flow.name}: read with base filter" if flow.filter else f"{flow.name}: read"
        try:
            _top1(ifs, ref, select=select, filter=flow.filter)
        except AuthError as exc:
            fix = f"grant read access to {ref.path} (a permission set with projection {ref.projection})"
            self.findings.fail("ifs", name, exc, fix)
        except Rejected as exc:
            fix = (
                f"fix {where}.filter; compare enums with qualified literals, e.g. "
                f"Objstate eq IfsApp.<Projection>.<Enum>'Value'"
                if flow.filter
                else f"check {where}"
            )
            self.findings.fail("ifs", name, exc, fix)
        except ConnectorError as exc:
            self.findings.fail("ifs", name, exc, TENANT_DOWN)
        else:
            self.findings.add("ifs", name, PASS, "one row read ($top=1)" + (" with the filter" if flow.filter else ""))

    def _flow_writeback(self, metadata: Metadata, where: str, flow: FlowConfig) -> None:
        wb = flow.writeback
        wref = EntitySetRef.parse(wb.entity_set or flow.entity_set)
        wmeta = metadata.get(wref.projection)
        if wmeta is None:
            return
        fields = [f for f in (wb.status_field, wb.key_field) if f]
        if fields:
            self._fields_present(wmeta, wref, fields, f"{where}.writeback.status_field / key_field")
        wanted = {w.action for w in [*wb.statuses.values(), *wb.categories.values()] if w.action}
        if not wanted:
            return
        try:
            actions = {a.name for a in wmeta.bound_actions(wref.name)}
        except KeyError:
            actions = set()
        missing = sorted(a for a in wanted if a not in actions and a.rsplit(".", 1)[-1] not in actions)
        self.findings.add(
            "ifs",
            f"{flow.name}: write-back actions",
            FAIL if missing else PASS,
            f"not bound to {wref.name}: {', '.join(missing)}" if missing else f"{len(wanted)} actions exist",
            f"use one of: {', '.join(sorted(actions))}" if missing else None,
        )

    def _lookups(self, ifs: IfsClient, metadata: Metadata) -> None:
        for name, spec in configured_lookups(self.config).items():
            ref = EntitySetRef.parse(spec.entity_set)
            meta = metadata.get(ref.projection)
            if meta is None:
                continue
            select = list(dict.fromkeys([spec.key, *spec.select]))
            if not self._fields_present(meta, ref, select, f"lookups.{name}"):
                continue
            try:
                _top1(ifs, ref, select=select, filter=spec.filter)
            except ConnectorError as exc:
                fix = f"check lookups.{name}.filter and read access to {ref.path}"
                self.findings.fail("ifs", f"lookup {name}: read", exc, fix)
            else:
                self.findings.add("ifs", f"lookup {name}: read", PASS, "one row read ($top=1)")

    def sample_emails(self, flow: FlowConfig) -> list[str]:
        """A few IFS persons' emails, to try against Jira's users; none unless IFS gave a token and persons are used."""
        spec = self.config.lookups.persons
        if not self.token_ok or spec is None or not flow.mapping.assignee or not flow.mapping.assignee.from_persons:
            return []
        try:
            ifs = self._ifs_factory()
        except ConnectorError:
            return []
        try:
            ref = EntitySetRef.parse(spec.entity_set)
            query = encode_query({"$top": 20, "$select": f"{spec.key},Email", "$filter": "Email ne null"})
            _, body = ifs.session.request_json("GET", f"{ref.path}?{query}", pace_keys=("ifs",))
            rows: list[dict[str, Any]] = body.get("value") or []
        except ConnectorError:
            return []
        finally:
            ifs.close()
        return [str(r["Email"]) for r in rows if r.get("Email")][:SAMPLE_USERS]
