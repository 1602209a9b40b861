"""``ml-connector check``: prove the configuration fits both tenants, reading only.

Every check yields a ``CheckResult`` with the fix for a failure. Nothing is written to IFS or Jira, and no secret
appears in a result (details are redacted against the configured secrets). With OAuth the token store may record a
rotated refresh token: Atlassian rotates it on use, so not saving it would lock the daemon out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ml_connector.config.connections import webhook_secret_problem
from ml_connector.config.models import WEBHOOK_PATH, ConnectorConfig, FlowConfig
from ml_connector.engine.runtime import split_field_name
from ml_connector.errors import AuthError, ConfigError, ConnectorError, NotFound, Rejected, TransientError
from ml_connector.http.redact import redact
from ml_connector.ifs import IfsClient
from ml_connector.ifs.metadata import ServiceMetadata
from ml_connector.ifs.odata import EntitySetRef, encode_query
from ml_connector.jira.client import JiraClient
from ml_connector.jira.fields import FieldRegistry
from ml_connector.jira.tokens import TokenStore
from ml_connector.store import Store

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
STATUS_CATEGORIES = {"new", "indeterminate", "done"}
SAMPLE_USERS = 3


@dataclass(frozen=True)
class CheckResult:
    system: str  # ifs | jira
    name: str
    status: str  # pass | fail | warn | skip
    detail: str = ""
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"


class Checker:
    """Runs the checks in order; a failed prerequisite (a token, a projection) skips what depends on it."""

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        ifs_factory: Callable[[], IfsClient] | None = None,
        jira_factory: Callable[[], JiraClient] | None = None,
        token_store: TokenStore | None = None,
        store_factory: Callable[[], Store] | None = None,
    ) -> None:
        self.config = config
        self._store_factory = store_factory
        self._ifs_factory = ifs_factory or (lambda: IfsClient.from_connection(config.ifs))
        self._jira_factory = jira_factory or (lambda: JiraClient.from_connection(config.jira, token_store=token_store))
        self._secret_values = config.secret_values()
        self.results: list[CheckResult] = []
        self._ifs_ok = False  # IFS samples (users) are read only when the IFS token worked

    def _add(self, system: str, name: str, status: str, detail: str = "", fix: str | None = None) -> CheckResult:
        clean = str(redact(detail, secrets=self._secret_values))
        fix_clean = str(redact(fix, secrets=self._secret_values)) if fix else None
        result = CheckResult(system, name, status, clean, fix_clean)
        self.results.append(result)
        return result

    def run(self) -> list[CheckResult]:
        self.check_ifs()
        self.check_jira()
        self.check_receiver()
        return self.results

    # ------------------------------------------------------------------------------------------- webhook receiver

    def check_receiver(self) -> None:
        """The receiver's state and its secret's strength (from the config alone: no call)."""
        config = self.config
        jira = config.jira
        if not config.webhooks.enabled:
            self._add("web", "webhook receiver", PASS, "disabled: POST /webhooks/jira answers 404 (JQL polling only)")
        elif not config.web.public_url:
            self._add(
                "web",
                "webhook receiver",
                WARN,
                "enabled, but web.public_url is not set, so nothing tells Jira where to deliver",
                "set web.public_url to the https URL Jira reaches this daemon on",
            )
        else:
            self._add("web", "webhook receiver", PASS, f"enabled at {self._webhook_url()}")
        secret = jira.webhook_secret.get_secret_value() if jira.webhook_secret else None
        oauth = jira.auth.kind == "oauth"
        if secret is None:
            if config.webhooks.enabled and not oauth:
                self._add(
                    "web",
                    "webhook secret",
                    FAIL,
                    "webhooks are enabled with Basic auth but jira.webhook_secret is unset: every delivery is refused",
                    "run `ml-connector init` for a generated secret or set JIRA_WEBHOOK_SECRET (32+ random bytes)",
                )
            elif oauth:
                self._add(
                    "web", "webhook secret", PASS, "OAuth app: deliveries carry a JWT signed with the client secret"
                )
            return
        problem = webhook_secret_problem(secret)
        if problem and jira.simulator:
            self._add(
                "web", "webhook secret", WARN, f"{problem}; accepted only because jira.simulator is set (loopback)"
            )
        elif problem:  # unreachable after config validation; kept so check never reports a weak secret as fine
            self._add("web", "webhook secret", FAIL, problem, "set a random secret of 32+ bytes")
        else:
            self._add("web", "webhook secret", PASS, f"{len(secret.encode('utf-8'))} bytes, not a published default")

    def _webhook_url(self) -> str:
        return (self.config.web.public_url or "").rstrip("/") + WEBHOOK_PATH

    def _registrations(self, jira: JiraClient) -> None:
        """Whether Jira's registered webhooks point at this connector's URL."""
        if not self.config.webhooks.enabled or not self.config.web.public_url:
            return
        want = self._webhook_url()
        name = "Jira webhook points here"
        if self.config.jira.auth.kind == "oauth":
            # Jira's list does not repeat the URL (it is the app's); the store remembers which id was registered for
            # which URL, and the list proves Jira still has it.
            live = self._guard(name, "check the manage:jira-webhook scope", jira.list_webhooks)
            if live is None:
                return
            ours = [s for s in self._stored_subscriptions() if s.get("url") == want]
            ids = {w.id for w in live}
            if any(int(s["webhook_id"]) in ids for s in ours):
                self._add("jira", name, PASS, f"a dynamic webhook registered for {want} is live")
            else:
                self._add(
                    "jira",
                    name,
                    WARN,
                    f"no live dynamic webhook registered for {want} ({len(live)} registered by this app)",
                    "`ml-connector run` registers it at start",
                )
            return
        response = self._guard(
            name,
            "check jira.url",
            lambda: jira.session.request("GET", "rest/webhooks/1.0/webhook", allow_status=(401, 403, 404)),
        )
        if response is None:
            return
        if response.status_code != 200:
            self._add(
                "jira",
                name,
                WARN,
                f"cannot be verified: the admin webhook list answered {response.status_code} (it needs a Jira admin)",
                f"make sure a Jira admin webhook with this secret delivers to {want}",
            )
            return
        try:
            hooks = [h for h in response.json() if isinstance(h, dict)]
        except ValueError:
            hooks = []
        pointing = [h for h in hooks if str(h.get("url", "")).rstrip("/") == want and h.get("enabled", True)]
        if pointing:
            self._add("jira", name, PASS, f"admin webhook {pointing[0].get('name') or ''!s} delivers to {want}".strip())
        else:
            self._add(
                "jira",
                name,
                FAIL,
                f"no enabled admin webhook delivers to {want} ({len(hooks)} admin webhooks found)",
                f"in Jira settings → System → WebHooks, create one with URL {want} and the configured secret",
            )

    def _stored_subscriptions(self) -> list[dict[str, Any]]:
        if self._store_factory is None:
            return []
        store = self._store_factory()
        try:
            return list(store.webhooks.all())
        finally:
            store.close()

    # ------------------------------------------------------------------------------------------------------ IFS

    def check_ifs(self) -> None:
        try:
            ifs = self._ifs_factory()
        except ConnectorError as exc:
            self._add("ifs", "IFS client", FAIL, _why(exc), "fix the ifs: section of the config")
            return
        try:
            if not self._ifs_token(ifs):
                return
            self._ifs_ok = True
            metadata: dict[str, ServiceMetadata | None] = {}
            for ref in self._ifs_sets():
                if ref.projection not in metadata:
                    metadata[ref.projection] = self._projection(ifs, ref.projection)
            for flow_index, flow in enumerate(self.config.flows):
                if flow.enabled:
                    self._ifs_flow(ifs, metadata, flow_index, flow)
            self._ifs_lookups(ifs, metadata)
        finally:
            ifs.close()

    def _ifs_token(self, ifs: IfsClient) -> bool:
        cfg = self.config.ifs
        if ifs.tokens is None:
            self._add("ifs", "IFS token", SKIP, "client has no token provider")
            return True
        try:
            ifs.tokens.token()
        except AuthError as exc:
            self._add(
                "ifs",
                "IFS token",
                FAIL,
                _why(exc),
                f"check ifs.client_id ({cfg.client_id}) and ifs.client_secret (IFS_CLIENT_SECRET) for realm "
                f"{cfg.realm}: the IAM client must exist, be enabled and have a service account",
            )
            return False
        except (TransientError, ConnectorError) as exc:
            self._add(
                "ifs", "IFS token", FAIL, _why(exc), f"check ifs.url ({cfg.base_url}) and ifs.realm ({cfg.realm})"
            )
            return False
        self._add("ifs", "IFS token", PASS, f"client {cfg.client_id} got a token from realm {cfg.realm}")
        return True

    def _ifs_sets(self) -> Iterator[EntitySetRef]:
        for flow in self.config.flows:
            if not flow.enabled:
                continue
            yield EntitySetRef.parse(flow.entity_set)
            if flow.lines:
                yield EntitySetRef.parse(flow.lines.entity_set)
            if flow.writeback.enabled and flow.writeback.entity_set:
                yield EntitySetRef.parse(flow.writeback.entity_set)
        for spec in self._lookups().values():
            yield EntitySetRef.parse(spec.entity_set)

    def _lookups(self) -> dict[str, Any]:
        lk = self.config.lookups
        return {n: s for n, s in (("suppliers", lk.suppliers), ("persons", lk.persons), ("projects", lk.projects)) if s}

    def _projection(self, ifs: IfsClient, projection: str) -> ServiceMetadata | None:
        name = f"projection {projection}"
        try:
            meta = ifs.metadata(projection)
        except AuthError as exc:
            self._add(
                "ifs",
                name,
                FAIL,
                _why(exc),
                f"grant the IAM client's user a permission set that includes the projection {projection}",
            )
            return None
        except (NotFound, Rejected) as exc:
            self._add(
                "ifs",
                name,
                FAIL,
                _why(exc),
                f"check the projection name {projection!r} (case sensitive); is it installed on this tenant?",
            )
            return None
        except ConnectorError as exc:
            self._add("ifs", name, FAIL, _why(exc), "check ifs.url and that the tenant is up")
            return None
        self._add("ifs", name, PASS, f"$metadata read ({len(meta.entity_sets)} entity sets)")
        return meta

    def _fields_present(self, meta: ServiceMetadata, ref: EntitySetRef, fields: Sequence[str], where: str) -> bool:
        name = f"{ref.path} fields"
        try:
            props = meta.entity_set(ref.name).entity_type.properties
        except KeyError:
            self._add(
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
            self._add(
                "ifs",
                name,
                FAIL,
                f"not in $metadata: {', '.join(hints)}",
                f"remove or correct them in {where} (IFS property names are case sensitive)",
            )
            return False
        self._add("ifs", name, PASS, f"{len(dict.fromkeys(fields))} selected fields present")
        return True

    def _top1(self, ifs: IfsClient, ref: EntitySetRef, *, select: Sequence[str], filter: str | None) -> None:
        """One ``$top=1`` read: proves read permission and that the server accepts the filter."""
        options: dict[str, str | int | None] = {"$top": 1, "$select": ",".join(select) or None, "$filter": filter}
        query = encode_query(options)
        ifs.session.request("GET", f"{ref.path}?{query}" if query else ref.path, pace_keys=("ifs",))

    def _ifs_flow(
        self, ifs: IfsClient, metadata: dict[str, ServiceMetadata | None], index: int, flow: FlowConfig
    ) -> None:
        where = f"flows[{index}] ({flow.name})"
        ref = EntitySetRef.parse(flow.entity_set)
        meta = metadata.get(ref.projection)
        if meta is None:
            self._add("ifs", f"{flow.name}: read", SKIP, f"projection {ref.projection} is not usable")
            return
        select = flow.read_fields()
        fields_ok = self._fields_present(meta, ref, select, f"{where}.select / key / cursor_field")
        name = f"{flow.name}: read with base filter" if flow.filter else f"{flow.name}: read"
        try:
            self._top1(ifs, ref, select=select if fields_ok else [flow.key], filter=flow.filter)
        except AuthError as exc:
            self._add(
                "ifs",
                name,
                FAIL,
                _why(exc),
                f"grant read access to {ref.path} (a permission set with projection {ref.projection})",
            )
        except Rejected as exc:
            self._add(
                "ifs",
                name,
                FAIL,
                _why(exc),
                f"fix {where}.filter; compare enums with qualified literals, e.g. "
                f"Objstate eq IfsApp.<Projection>.<Enum>'Value'"
                if flow.filter
                else f"check {where}",
            )
        except ConnectorError as exc:
            self._add("ifs", name, FAIL, _why(exc), "check ifs.url and that the tenant is up")
        else:
            self._add("ifs", name, PASS, "one row read ($top=1)" + (" with the filter" if flow.filter else ""))
        if flow.lines:
            lref = EntitySetRef.parse(flow.lines.entity_set)
            lmeta = metadata.get(lref.projection)
            if lmeta is not None:
                self._fields_present(
                    lmeta, lref, [flow.lines.parent_key, *flow.lines.select], f"{where}.lines.select / parent_key"
                )
        wb = flow.writeback
        if wb.enabled:
            wref = EntitySetRef.parse(wb.entity_set or flow.entity_set)
            wmeta = metadata.get(wref.projection)
            if wmeta is None:
                return
            fields = [f for f in (wb.status_field, wb.key_field) if f]
            if fields:
                self._fields_present(wmeta, wref, fields, f"{where}.writeback.status_field / key_field")
            wanted = {w.action for w in [*wb.statuses.values(), *wb.categories.values()] if w.action}
            if wanted:
                try:
                    actions = {a.name for a in wmeta.bound_actions(wref.name)}
                except KeyError:
                    actions = set()
                missing = sorted(a for a in wanted if a not in actions and a.rsplit(".", 1)[-1] not in actions)
                self._add(
                    "ifs",
                    f"{flow.name}: write-back actions",
                    FAIL if missing else PASS,
                    f"not bound to {wref.name}: {', '.join(missing)}" if missing else f"{len(wanted)} actions exist",
                    f"use one of: {', '.join(sorted(actions))}" if missing else None,
                )

    def _ifs_lookups(self, ifs: IfsClient, metadata: dict[str, ServiceMetadata | None]) -> None:
        for name, spec in self._lookups().items():
            ref = EntitySetRef.parse(spec.entity_set)
            meta = metadata.get(ref.projection)
            if meta is None:
                continue
            select = list(dict.fromkeys([spec.key, *spec.select]))
            if not self._fields_present(meta, ref, select, f"lookups.{name}"):
                continue
            try:
                self._top1(ifs, ref, select=select, filter=spec.filter)
            except ConnectorError as exc:
                self._add(
                    "ifs",
                    f"lookup {name}: read",
                    FAIL,
                    _why(exc),
                    f"check lookups.{name}.filter and read access to {ref.path}",
                )
            else:
                self._add("ifs", f"lookup {name}: read", PASS, "one row read ($top=1)")

    # ----------------------------------------------------------------------------------------------------- Jira

    def check_jira(self) -> None:
        try:
            jira = self._jira_factory()
        except AuthError as exc:
            self._add("jira", "Jira authentication", FAIL, _why(exc), self._auth_fix())
            return
        except ConnectorError as exc:
            self._add("jira", "Jira client", FAIL, _why(exc), "check jira.url and the jira.auth section")
            return
        try:
            try:
                me = jira.myself()
            except AuthError as exc:
                self._add("jira", "Jira authentication", FAIL, _why(exc), self._auth_fix())
                return
            except ConnectorError as exc:
                self._add("jira", "Jira authentication", FAIL, _why(exc), f"check jira.url ({self.config.jira.url})")
                return
            self._add(
                "jira", "Jira authentication", PASS, f"signed in as {me.get('displayName') or me.get('accountId')}"
            )
            self._jira_flows(jira)
            self._registrations(jira)
        finally:
            jira.close()

    def _auth_fix(self) -> str:
        if self.config.jira.auth.kind == "basic":
            return (
                "check jira.auth.email and the API token (JIRA_API_TOKEN; create one at "
                "https://id.atlassian.com/manage-profile/security/api-tokens) for that account"
            )
        return (
            "check jira.auth.client_id / client_secret; if the refresh token was revoked, run the OAuth consent again"
        )

    def _guard(self, name: str, fix: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ConnectorError as exc:
            self._add("jira", name, FAIL, _why(exc), fix)
            return None

    def _jira_flows(self, jira: JiraClient) -> None:
        flows = [(i, f) for i, f in enumerate(self.config.flows) if f.enabled]
        wanted_projects: dict[str, list[str]] = {}
        for i, flow in flows:
            for key in [flow.mapping.project.default, *flow.mapping.project.map.values()]:
                if key:
                    wanted_projects.setdefault(key, []).append(f"flows[{i}].mapping.project")
        found = self._guard("Jira projects", "check jira.url", lambda: jira.projects(sorted(wanted_projects)))
        if found is None:
            return
        visible = {str(p.get("key")) for p in found}
        for key, paths in sorted(wanted_projects.items()):
            if key in visible:
                self._add("jira", f"project {key}", PASS, "exists and is visible")
            else:
                self._add(
                    "jira",
                    f"project {key}",
                    FAIL,
                    f"no project {key} is visible to the connector's user",
                    f"correct {paths[0]} or give the user Browse/Create permission in {key}",
                )
        registry = self._guard("Jira fields", "check jira.url", jira.fields)
        priorities = self._guard("Jira priorities", "check jira.url", jira.priorities)
        for i, flow in flows:
            where = f"flows[{i}] ({flow.name})"
            resolved = self._custom_fields(registry, where, flow) if registry is not None else {}
            self._create_screens(jira, visible, where, flow, resolved)
            if priorities is not None:
                self._priorities(priorities, where, flow)
            self._writeback_statuses(jira, visible, where, flow)
            self._users(jira, where, flow)

    def _custom_fields(self, registry: FieldRegistry, where: str, flow: FlowConfig) -> dict[str, str]:
        resolved: dict[str, str] = {}
        for configured in flow.mapping.custom_fields:
            name, wanted_type = split_field_name(configured)
            try:
                field_id = registry.resolve(name, field_type=wanted_type)
            except ConfigError as exc:
                candidates = registry.candidates(name)
                fix = (
                    f"in {where}.mapping.custom_fields write the field id ("
                    + " or ".join(f.id for f in candidates)
                    + f") or add a type suffix, e.g. '{name}:text' or '{name}:select'"
                    if len(candidates) > 1
                    else f"correct the field name in {where}.mapping.custom_fields, or create the field in Jira"
                )
                self._add("jira", f"{flow.name}: field {configured!r}", FAIL, exc.message, fix)
                continue
            resolved[configured] = field_id
            self._add("jira", f"{flow.name}: field {configured!r}", PASS, f"resolves to {field_id}")
        return resolved

    def _projects_of(self, flow: FlowConfig, visible: set[str]) -> list[str]:
        keys = [flow.mapping.project.default, *flow.mapping.project.map.values()]
        return sorted({k for k in keys if k and k in visible})

    def _create_screens(
        self, jira: JiraClient, visible: set[str], where: str, flow: FlowConfig, resolved: dict[str, str]
    ) -> None:
        mapping = flow.mapping
        covered = {"project", "issuetype", "summary", "reporter", *resolved.values()}
        if mapping.description:
            covered.add("description")
        if mapping.priority:
            covered.add("priority")
        if mapping.assignee:
            covered.add("assignee")
        if mapping.labels:
            covered.add("labels")
        for project in self._projects_of(flow, visible):
            types = self._guard(
                f"{project}: issue types", "check Create permission", partial(jira.create_issue_types, project)
            )
            if types is None:
                continue
            match = next((t for t in types if t.get("name") == mapping.issue_type), None)
            if match is None:
                names = ", ".join(sorted(str(t.get("name")) for t in types))
                self._add(
                    "jira",
                    f"{project}: issue type {mapping.issue_type!r}",
                    FAIL,
                    f"not creatable in {project}",
                    f"set {where}.mapping.issue_type to one of: {names}",
                )
                continue
            self._add("jira", f"{project}: issue type {mapping.issue_type!r}", PASS, f"id {match.get('id')}")
            fields = self._guard(
                f"{project}: create screen",
                "check Create permission",
                partial(jira.create_fields, project, str(match["id"])),
            )
            if fields is None:
                continue
            missing = [
                f"{f.get('name')} ({f.get('fieldId') or f.get('key')})"
                for f in fields
                if f.get("required")
                and not f.get("hasDefaultValue")
                and str(f.get("fieldId") or f.get("key")) not in covered
            ]
            name = f"{project}/{mapping.issue_type}: required fields"
            if missing:
                self._add(
                    "jira",
                    name,
                    FAIL,
                    f"required on the create screen but not mapped: {', '.join(missing)}",
                    f"add them to {where}.mapping.custom_fields (or make them optional in Jira)",
                )
            else:
                self._add("jira", name, PASS, "every required field is mapped")

    def _priorities(self, priorities: list[dict[str, Any]], where: str, flow: FlowConfig) -> None:
        spec = flow.mapping.priority
        if spec is None:
            return
        names = {str(p.get("name")) for p in priorities}
        wanted = {*spec.map.values(), *([spec.default] if spec.default else [])}
        missing = sorted(w for w in wanted if w not in names)
        self._add(
            "jira",
            f"{flow.name}: priorities",
            FAIL if missing else PASS,
            f"unknown: {', '.join(missing)}" if missing else f"{len(wanted)} priorities exist",
            f"use Jira's names in {where}.mapping.priority: {', '.join(sorted(names))}" if missing else None,
        )

    def _writeback_statuses(self, jira: JiraClient, visible: set[str], where: str, flow: FlowConfig) -> None:
        wb = flow.writeback
        if not wb.enabled:
            return
        bad_categories = sorted(set(wb.categories) - STATUS_CATEGORIES)
        if bad_categories:
            self._add(
                "jira",
                f"{flow.name}: write-back categories",
                FAIL,
                f"unknown: {', '.join(bad_categories)}",
                f"use new, indeterminate or done in {where}.writeback.categories",
            )
        if not wb.statuses:
            return
        statuses: set[str] = set()
        for project in self._projects_of(flow, visible):
            try:
                _, issue_types = jira.session.request_json(
                    "GET", f"/rest/api/3/project/{project}/statuses", expect=list, pace_keys=("burst:read",)
                )
            except NotFound:
                self._add(
                    "jira",
                    f"{flow.name}: write-back statuses",
                    WARN,
                    "this Jira does not list project statuses; not verified",
                    None,
                )
                return
            except ConnectorError as exc:
                self._add("jira", f"{flow.name}: write-back statuses", FAIL, _why(exc), "check Browse permission")
                return
            for issue_type in issue_types:
                for status in issue_type.get("statuses") or []:
                    statuses.add(str(status.get("name")))
        missing = sorted(s for s in wb.statuses if s not in statuses)
        self._add(
            "jira",
            f"{flow.name}: write-back statuses",
            FAIL if missing else PASS,
            f"not in the project workflows: {', '.join(missing)}" if missing else f"{len(wb.statuses)} statuses exist",
            f"correct {where}.writeback.statuses; workflow statuses: {', '.join(sorted(statuses))}"
            if missing
            else None,
        )

    def _users(self, jira: JiraClient, where: str, flow: FlowConfig) -> None:
        assignee = flow.mapping.assignee
        if assignee is None:
            return
        static = sorted({*assignee.emails.values(), *([assignee.fallback_email] if assignee.fallback_email else [])})
        for email in static:
            resolution = self._guard(
                f"user {email}", "check Browse users permission", partial(jira.users.resolve, email)
            )
            if resolution is None:
                continue
            self._add(
                "jira",
                f"{flow.name}: user {email}",
                PASS if resolution.found else FAIL,
                "resolves to an account" if resolution.found else "no Jira account with this email",
                None if resolution.found else f"correct {where}.mapping.assignee or invite the user to Jira",
            )
        samples = self._sample_emails(flow)
        if not samples:
            return
        unresolved = []
        for email in samples:
            resolution = self._guard(
                f"user {email}", "check Browse users permission", partial(jira.users.resolve, email)
            )
            if resolution is not None and not resolution.found:
                unresolved.append(email)
        self._add(
            "jira",
            f"{flow.name}: sample users",
            WARN if unresolved else PASS,
            f"{len(samples) - len(unresolved)} of {len(samples)} IFS persons resolve"
            + (f"; not found: {', '.join(unresolved)}" if unresolved else ""),
            "those issues get the fallback assignee; set mapping.assignee.emails or fallback_email"
            if unresolved
            else None,
        )

    def _sample_emails(self, flow: FlowConfig) -> list[str]:
        spec = self.config.lookups.persons
        if not self._ifs_ok or spec is None or not flow.mapping.assignee or not flow.mapping.assignee.from_persons:
            return []
        try:
            ifs = self._ifs_factory()
        except ConnectorError:
            return []
        try:
            ref = EntitySetRef.parse(spec.entity_set)
            query = encode_query({"$top": 20, "$select": f"{spec.key},Email", "$filter": "Email ne null"})
            _, body = ifs.session.request_json("GET", f"{ref.path}?{query}", pace_keys=("ifs",))
            rows = body.get("value") or []
        except ConnectorError:
            return []
        finally:
            ifs.close()
        return [str(r["Email"]) for r in rows if r.get("Email")][:SAMPLE_USERS]


def run_checks(
    config: ConnectorConfig,
    *,
    ifs_factory: Callable[[], IfsClient] | None = None,
    jira_factory: Callable[[], JiraClient] | None = None,
    token_store: TokenStore | None = None,
    store_factory: Callable[[], Store] | None = None,
) -> list[CheckResult]:
    """Every check for ``config``, in order (IFS, Jira, then the webhook receiver)."""
    return Checker(
        config, ifs_factory=ifs_factory, jira_factory=jira_factory, token_store=token_store, store_factory=store_factory
    ).run()
