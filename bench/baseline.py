"""The script a user would otherwise write: pycontribs ``jira``, one IFS read per record, one Jira search per record
to avoid duplicates, one create (or edit) per record; and for write-back one IFS read (for the ETag) plus one PATCH
per issue. Run as ``python -m bench.baseline '<json spec>'``; prints one ``BENCH {json}`` line.

It is written the way a careful user would write it (it honours ``Retry-After`` on IFS 429s, pycontribs retries Jira
429s itself), not as a straw man; it simply has no batching, no paging of line reads and no local state.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any
from urllib.parse import quote

import httpx2
from jira import JIRA

from bench.memory import peak_rss_mb

API = "/main/ifsapplications/projection/v1"
PO_SET = f"{API}/PurchaseOrderHandling.svc/PurchaseOrderSet"
CAPEX_PROJECTS = {"PRJ-1000", "PRJ-1001"}
COST_CENTER_OPTIONS = {"CC100": "CC-100", "CC200": "CC-200", "CC300": "CC-300", "CC410": "CC-400", "CC520": "CC-400"}


class Ifs:
    """Plain httpx2 with a client-credentials token; sleeps ``Retry-After`` on 429 like a careful script would."""

    def __init__(self, url: str) -> None:
        self.http = httpx2.Client(base_url=url, timeout=120)
        self.token = ""
        self.refresh()

    def refresh(self) -> None:
        response = self.http.post(
            "/auth/realms/mlc/protocol/openid-connect/token",
            data={"grant_type": "client_credentials", "client_id": "ml-connector", "client_secret": "sim-secret"},
        )
        response.raise_for_status()
        self.token = response.json()["access_token"]

    def request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        for _ in range(20):
            headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
            response = self.http.request(method, url, headers=headers, **kwargs)
            kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
            if response.status_code == 429:
                time.sleep(float(response.headers.get("Retry-After") or 1))
                continue
            if response.status_code == 401:
                self.refresh()
                continue
            response.raise_for_status()
            return response
        raise RuntimeError(f"{method} {url}: still throttled")

    def orders(self, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` purchase orders (all fields), a page at a time."""
        rows: list[dict[str, Any]] = []
        url: str | None = f"{PO_SET}?$orderby=OrderNo&$top={limit}"
        while url and len(rows) < limit:
            body = self.request("GET", url).json()
            rows.extend(body.get("value") or [])
            url = body.get("@odata.nextLink")
        return rows[:limit]

    @staticmethod
    def path(key: str) -> str:
        return f"{PO_SET}(OrderNo='{quote(key.replace(chr(39), chr(39) * 2), safe='')}')"

    def lines(self, key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.request("GET", f"{self.path(key)}/LinePartArray").json().get("value") or []
        return rows


def label(key: str) -> str:
    return "ifs-" + re.sub(r"[^A-Za-z0-9_-]", "_", key)


def summary(po: dict[str, Any]) -> str:
    return f"PO {po['OrderNo']}: {po.get('Description') or '(no description)'}"


def fields_for(po: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    first = sorted(lines, key=lambda r: (r.get("LineNo") or "", r.get("ReleaseNo") or ""))[:1]
    line = first[0] if first else {}
    project = "CAPEX" if po.get("ProjectId") in CAPEX_PROJECTS else "PROC"
    fields: dict[str, Any] = {
        "project": {"key": project},
        "issuetype": {"name": "Purchase Order"},
        "summary": summary(po),
        "description": f"Purchase order {po['OrderNo']} from supplier {po.get('VendorNo')}.",
        "labels": ["ifs-po", label(po["OrderNo"])],
        "customfield_10053": po["OrderNo"],
        "customfield_10052": po.get("VendorNo"),
        "customfield_10050": line.get("CodeA"),
        "customfield_10060": line.get("CodeB"),
    }
    option = COST_CENTER_OPTIONS.get(str(line.get("CodeB")))
    if option:
        fields["customfield_10051"] = {"value": option}
    return fields


def sync(ifs: Ifs, jira: JIRA, sample: int, *, allow_create: bool) -> dict[str, int]:
    """The naive outbound loop: for each order, read its lines, search Jira for it, create or edit."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for po in ifs.orders(sample):
        lines = ifs.lines(po["OrderNo"])  # the one IFS read per record
        found = jira.enhanced_search_issues(f'labels = "{label(po["OrderNo"])}"', fields="summary")
        if not found:
            if allow_create:
                jira.create_issue(fields=fields_for(po, lines))
                counts["created"] += 1
            continue
        issue = found[0]
        if issue.fields.summary != summary(po):
            issue.update(fields={"summary": summary(po)})
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    return counts


def writeback(ifs: Ifs, jira: JIRA) -> dict[str, int]:
    """The naive write-back: find moved issues with JQL, then per issue GET the IFS record (ETag) and PATCH it."""
    written = 0
    for issue in jira.enhanced_search_issues(
        'project in (PROC, CAPEX) AND labels = "ifs-po" AND status = "In Progress"',
        maxResults=False,
        fields="status,customfield_10053",
    ):
        key = str(issue.fields.customfield_10053)
        row = ifs.request("GET", ifs.path(key)).json()
        if row.get("Cf_Jira_Status") == issue.fields.status.name:
            continue
        ifs.request(
            "PATCH",
            ifs.path(key),
            json={"Cf_Jira_Status": issue.fields.status.name, "Cf_Jira_Key": issue.key},
            headers={"If-Match": row["@odata.etag"]},
        )
        written += 1
    return {"written_back": written}


def main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    started = time.perf_counter()
    ifs = Ifs(spec["ifs_url"])
    jira = JIRA(server=spec["jira_url"], basic_auth=("connector@example.com", "sim-api-token"))
    try:
        if spec["mode"] == "backfill":
            counts = sync(ifs, jira, spec["sample"], allow_create=True)
        elif spec["mode"] == "incremental":
            counts = sync(ifs, jira, spec["sample"], allow_create=False)
        else:
            counts = writeback(ifs, jira)
    finally:
        jira.close()
        ifs.http.close()
    result = {
        "mode": spec["mode"],
        "counts": counts,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
    }
    sys.stdout.write("BENCH " + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
