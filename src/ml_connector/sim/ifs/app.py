"""The ASGI app: IAM token endpoint (``iam``), OData projections (``projections``, URLs parsed by ``urls``), and the
``/_sim/`` control API (``control``).

Every request outside ``/_sim/`` passes the fault gate (``gate``) first; the control API is never gated.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from ml_connector.sim.ifs.control import ControlApi
from ml_connector.sim.ifs.gate import FaultGate
from ml_connector.sim.ifs.iam import Iam
from ml_connector.sim.ifs.options import IfsSimOptions
from ml_connector.sim.ifs.projections import ProjectionHandler
from ml_connector.sim.ifs.simulator import IfsSimulator


class IfsSimApp(Starlette):
    """Starlette with the fault gate in front of every non-``/_sim/`` request."""

    sim: IfsSimulator
    projections: ProjectionHandler
    gate: FaultGate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/") or scope["path"] == "/_sim":
            await self.route(scope, receive, send)
            return
        await self.gate(scope, receive, send)

    async def route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Starlette's own routing (IAM and control routes)."""
        await super().__call__(scope, receive, send)


def create_app(options: IfsSimOptions | None = None) -> IfsSimApp:
    """A fresh simulator behind a fresh ASGI app; the simulator is ``app.state.sim``."""
    sim = IfsSimulator(options)
    app = IfsSimApp(routes=[*Iam(sim).routes(), *ControlApi(sim).routes()])
    app.sim = sim
    app.projections = ProjectionHandler(sim)
    app.gate = FaultGate(sim, app.projections, app.route)
    app.state.sim = sim
    return app
