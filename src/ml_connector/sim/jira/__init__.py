"""Jira Cloud simulator: ``create_app(JiraSimOptions(...))`` returns an ASGI app; ``app.state.sim`` is the control."""

from ml_connector.sim.jira.app import create_app
from ml_connector.sim.jira.common import ApiError, render_dt
from ml_connector.sim.jira.core import JiraSim
from ml_connector.sim.jira.options import FailRule, Faults, JiraSimOptions

__all__ = ["ApiError", "FailRule", "Faults", "JiraSim", "JiraSimOptions", "create_app", "render_dt"]
