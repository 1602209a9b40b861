"""Bulk create: chunks of 50 drafts, one outcome per draft, transient elements retried, ambiguous calls flagged.

A whole call that fails after the body was sent, in a way ``ApiSession`` will not resend, marks its drafts
``uncertain``: some may exist, so the caller reconciles before creating them again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ml_connector.errors import ConnectorError, PermanentError, TransientError, Unavailable
from ml_connector.http.ratelimit import submit_in_scope
from ml_connector.http.session import may_have_acted
from ml_connector.jira.base import API, SYSTEM, JiraBase
from ml_connector.jira.models import CreatedIssue, CreateOutcome, DraftIssue, JiraFailure

BULK_LIMIT = 50  # issues per POST /issue/bulk (Jira's documented maximum; the schema does not enforce it)

Outcomes = dict[int, CreateOutcome]


def _failure_from_error(exc: ConnectorError, *, uncertain: bool = False) -> JiraFailure:
    status = getattr(exc, "status", None)
    details = getattr(exc, "details", {}) or {}
    errors = {str(k): str(v) for k, v in (details.get("errors") or {}).items()}
    return JiraFailure(
        status=status,
        error_messages=(exc.message,),
        errors=errors,
        transient=isinstance(exc, TransientError),
        uncertain=uncertain,
    )


def _failure_from_element(element: Mapping[str, Any]) -> JiraFailure:
    status = element.get("status")
    body = element.get("elementErrors")
    body = body if isinstance(body, dict) else {}
    status_int = int(status) if isinstance(status, int | str) and str(status).isdigit() else None
    return JiraFailure(
        status=status_int,
        error_messages=tuple(str(m) for m in body.get("errorMessages") or ()),
        errors={str(k): str(v) for k, v in (body.get("errors") or {}).items()},
        transient=status_int is not None and (status_int == 429 or status_int >= 500),
    )


def _all_failed(drafts: Sequence[DraftIssue], chunk: Sequence[int], failure: JiraFailure) -> Outcomes:
    return {i: CreateOutcome(index=i, draft=drafts[i], failure=failure) for i in chunk}


def _created(drafts: Sequence[DraftIssue], index: int, issue: object) -> CreateOutcome:
    """The outcome of a draft Jira reports as created: ``issue`` is its entry, None when the list ran out."""
    if not isinstance(issue, dict) or "id" not in issue or "key" not in issue:
        problem = "lists fewer issues than sent" if issue is None else "lists an issue without id and key"
        failure = JiraFailure(status=None, error_messages=(f"bulk response {problem}",), transient=True, uncertain=True)
        return CreateOutcome(index=index, draft=drafts[index], failure=failure)
    created = CreatedIssue(id=str(issue["id"]), key=str(issue["key"]), self_url=issue.get("self"))
    return CreateOutcome(index=index, draft=drafts[index], issue=created)


def _chunk_outcomes(drafts: Sequence[DraftIssue], chunk: Sequence[int], status: int, data: Any) -> Outcomes:
    """Outcomes of one bulk answer (201 partial or 400 all failed) for the drafts at ``chunk``."""
    errors, issues = data.get("errors"), data.get("issues")
    if status == 400 and not isinstance(errors, list):
        failure = JiraFailure(
            status=400,
            error_messages=tuple(str(m) for m in data.get("errorMessages") or ()),
            errors={str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
        )
        return _all_failed(drafts, chunk, failure)
    failed: dict[int, JiraFailure] = {}
    for element in errors if isinstance(errors, list) else []:
        position = element.get("failedElementNumber") if isinstance(element, dict) else None
        if isinstance(position, int) and 0 <= position < len(chunk):
            failed[position] = _failure_from_element(element)
    created = iter(issues if isinstance(issues, list) else [])
    result: Outcomes = {}
    # Jira lists created issues in request order, skipping failed elements.
    for position, index in enumerate(chunk):
        if position in failed:
            result[index] = CreateOutcome(index=index, draft=drafts[index], failure=failed[position])
        else:
            result[index] = _created(drafts, index, next(created, None))
    return result


def _retryable(outcome: CreateOutcome) -> bool:
    failure = outcome.failure
    return failure is not None and failure.transient and not failure.uncertain


class BulkOps(JiraBase):
    """``POST /issue/bulk`` in chunks, optionally several in flight."""

    def bulk_create(
        self,
        drafts: Sequence[DraftIssue],
        *,
        element_retries: int = 2,
        concurrency: int = 1,
        sleep: Callable[[float], None] | None = None,
    ) -> list[CreateOutcome]:
        """Create in chunks of 50; one outcome per draft, in input order.

        ``concurrency`` chunks are in flight at once (latency, not points, is what bulk create waits on; pacing and
        429 handling stay per endpoint in the shared session).

        Failed elements are retried (in a later chunk) only when Jira's per-element status is transient (429, 5xx),
        at most ``element_retries`` times. A whole call that fails after the body was sent, in a way ``ApiSession``
        will not resend, marks its drafts ``uncertain``: some may exist, so the caller reconciles before recreating.
        """
        outcomes: Outcomes = {}
        pending = list(range(len(drafts)))
        for round_no in range(element_retries + 1):
            if not pending:
                break
            if round_no and not self._wait_before_round(round_no, sleep):
                break  # shutting down: the failed elements keep their (transient) outcome
            retry_next: list[int] = []
            for result in self._send_round(drafts, pending, concurrency):
                outcomes.update(result)
                retry_next.extend(index for index, outcome in result.items() if _retryable(outcome))
            pending = sorted(retry_next)
        return [outcomes[i] for i in range(len(drafts))]

    def _wait_before_round(self, round_no: int, sleep: Callable[[float], None] | None) -> bool:
        """Back off before retry round ``round_no``; False when the session is stopping."""
        delay = self.session.backoff(round_no)
        if sleep is not None:
            sleep(delay)
            return True
        return not self.session.stop.wait(delay)

    def _send_round(self, drafts: Sequence[DraftIssue], pending: list[int], concurrency: int) -> list[Outcomes]:
        chunks = [pending[start : start + BULK_LIMIT] for start in range(0, len(pending), BULK_LIMIT)]
        if concurrency <= 1 or len(chunks) <= 1:
            return [self._bulk_chunk(drafts, chunk) for chunk in chunks]
        with ThreadPoolExecutor(max_workers=min(concurrency, len(chunks))) as pool:
            # Each worker runs in a copy of this context, so the run's rate-limit budget applies there too.
            futures = [submit_in_scope(pool, self._bulk_chunk, drafts, chunk) for chunk in chunks]
            return [future.result() for future in futures]

    def _bulk_chunk(self, drafts: Sequence[DraftIssue], chunk: list[int]) -> Outcomes:
        if self.session.stop.is_set():  # shutting down: this chunk is not sent (Jira provably made nothing)
            stopped = Unavailable("not sent: the process is stopping", system=SYSTEM, not_sent=True)
            return _all_failed(drafts, chunk, _failure_from_error(stopped, uncertain=False))
        body = {"issueUpdates": [drafts[i].to_payload() for i in chunk]}
        try:
            response, data = self.session.request_json(
                "POST", f"{API}/issue/bulk", json=body, pace_keys=("burst:issue-bulk",), allow_status=(400,)
            )
        except (TransientError, PermanentError) as exc:
            # A transient error ApiSession did not resend (a 500, a reset or a malformed answer after the body was
            # sent) means Jira may have acted: the caller reconciles before creating again.
            uncertain = isinstance(exc, TransientError) and may_have_acted(exc)
            return _all_failed(drafts, chunk, _failure_from_error(exc, uncertain=uncertain))
        return _chunk_outcomes(drafts, chunk, response.status_code, data)
