"""Plan and apply: outbound and write-back flows, failure policy, replay, dry run."""

from ml_connector.engine.locks import FlowBusy, flow_lock
from ml_connector.engine.outbound import OutboundSync
from ml_connector.engine.report import PlannedAction, RunReport
from ml_connector.engine.runtime import Connector
from ml_connector.engine.writeback.changes import StatusChange
from ml_connector.engine.writeback.inbox import process_inbox
from ml_connector.engine.writeback.sync import WritebackSync

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
