"""Machine endpoints: liveness, readiness (database and each system's last contact) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ml_connector.metrics import CONTENT_TYPE
from ml_connector.web import queries
from ml_connector.web.context import Web, WebContext

SYSTEMS = ("ifs", "jira")
HEALTH_LABELS = {
    "operational": "Operational",
    "unreachable": "Unreachable",
    "auth_failed": "Authentication failed",
}
PATHS = ("/healthz", "/readyz", "/metrics")

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(web: Web) -> JSONResponse:
    problem = queries.database_ok(web.store)
    systems: dict[str, Any] = {}
    reasons: list[str] = [problem] if problem else []
    if not problem:
        health = web.store.health.all()
        for system in SYSTEMS:
            systems[system] = _system_status(web, health.get(system), system, reasons)
    ready = not reasons
    body = {"ready": ready, "database": problem or "ok", "systems": systems, "reasons": reasons}
    return JSONResponse(body, status_code=200 if ready else 503)


def _system_status(web: WebContext, row: dict[str, Any] | None, system: str, reasons: list[str]) -> dict[str, Any]:
    """One system's readiness entry; a system that is not operational adds its reason to ``reasons``."""
    if row is None:
        return {"status": "unknown", "reason": "no contact yet", "last_success_at": None}
    last = row.get("last_success_at")
    reason = web.clean_text(row.get("reason"))
    if row["status"] != "operational":
        label = HEALTH_LABELS.get(row["status"], row["status"])
        reasons.append(f"{system}: {label}" + (f" ({reason})" if row.get("reason") else ""))
    return {"status": row["status"], "reason": reason or None, "last_success_at": last.isoformat() if last else None}


@router.get("/metrics")
def metrics_endpoint(web: Web) -> Response:
    return Response(web.metrics.render(), media_type=CONTENT_TYPE)
