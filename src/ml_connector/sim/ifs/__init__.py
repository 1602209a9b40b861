"""IFS Cloud simulator: an ASGI app that behaves like IFS Cloud where the connector relies on it.

``create_app(options)`` returns the app; ``app.state.sim`` is the ``IfsSimulator`` behind it (the control API's
operations as Python methods). See ``docs/simulators-ifs.md``.
"""

from ml_connector.sim.ifs.app import IfsSimApp, create_app
from ml_connector.sim.ifs.odata import ODataError, quote_string
from ml_connector.sim.ifs.options import FailNext, FaultSettings, IfsSimOptions
from ml_connector.sim.ifs.schema import BASE_PATH
from ml_connector.sim.ifs.seed import SPECIAL_ORDER_SUFFIXES, order_no
from ml_connector.sim.ifs.simulator import IfsSimulator, SimError, precondition_kind
from ml_connector.sim.wire import ConnectionDropped

__all__ = [
    "BASE_PATH",
    "SPECIAL_ORDER_SUFFIXES",
    "ConnectionDropped",
    "FailNext",
    "FaultSettings",
    "IfsSimApp",
    "IfsSimOptions",
    "IfsSimulator",
    "ODataError",
    "SimError",
    "create_app",
    "order_no",
    "precondition_kind",
    "quote_string",
]
