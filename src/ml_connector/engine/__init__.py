"""Plan and apply: outbound and write-back flows, failure policy, replay, dry run."""

from ml_connector.engine.locks import FlowBusy, flow_lock
from ml_connector.engine.outbound import OutboundSync
from ml_connector.engine.report import PlannedAction, RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.writeback import StatusChange, WritebackSync, process_inbox

__all__ = [
    "Connector",
    "FlowBusy",
    "OutboundSync",
    "PlannedAction",
    "RunReport",
    "StatusChange",
    "WritebackSync",
    "flow_lock",
    "process_inbox",
]
