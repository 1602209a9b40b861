"""Web app: Jira webhook receiver, health and readiness, Prometheus metrics, and the operator dashboard."""

from ml_connector.web.app import create_app
from ml_connector.web.control import SchedulerControl, StoreControl

__all__ = ["SchedulerControl", "StoreControl", "create_app"]
