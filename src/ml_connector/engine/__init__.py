"""Plan and apply: outbound and write-back flows, failure policy, replay, dry run."""

from ml_connector.engine.flows import FlowOptions, FlowRun, Step, run_flow
from ml_connector.engine.inbox import process_inbox
from ml_connector.engine.locks import FlowBusy, flow_lock
from ml_connector.engine.outbound import OutboundSync
from ml_connector.engine.replay import replay_flows, requeue_records
from ml_connector.engine.report import PlannedAction, RunReport
from ml_connector.engine.requeue import requeue_failed
from ml_connector.engine.runtime import Connector
from ml_connector.engine.writeback.changes import StatusChange
from ml_connector.engine.writeback.sync import WritebackSync

__all__ = [
    "Connector",
    "FlowBusy",
    "FlowOptions",
    "FlowRun",
    "OutboundSync",
    "PlannedAction",
    "RunReport",
    "StatusChange",
    "Step",
    "WritebackSync",
    "flow_lock",
    "process_inbox",
    "replay_flows",
    "requeue_failed",
    "requeue_records",
    "run_flow",
]
