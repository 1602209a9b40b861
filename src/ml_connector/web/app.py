"""FastAPI application factory (work in progress: the interface is final, routes are being added)."""

from __future__ import annotations

from fastapi import FastAPI

from ml_connector.engine import Connector
from ml_connector.web.control import SchedulerControl, StoreControl


def create_app(connector: Connector, *, scheduler: SchedulerControl | None = None) -> FastAPI:
    """Build the web app for one connector; ``scheduler`` is the daemon's live scheduler, if any."""
    app = FastAPI(title="ml-connector", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.connector = connector
    app.state.control = scheduler or StoreControl(connector.store)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
