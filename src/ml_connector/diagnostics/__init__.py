"""``ml-connector check``: prove the configuration fits both tenants, reading only.

Every check yields a ``CheckResult`` with the fix for a failure. Nothing is written to IFS or Jira, and no secret
appears in a result (details are redacted against the configured secrets). With OAuth the token store may record a
rotated refresh token: Atlassian rotates it on use, so not saving it would lock the daemon out.

The checks are grouped by what they prove: ``ifs`` (token, projections, fields, reads, write-back actions, lookups),
``jira`` (sign-in, projects, priorities, write-back statuses), ``jira_fields`` (custom fields, create screens),
``jira_users`` (assignees) and ``webhooks`` (the receiver, its secret and what Jira delivers to it); ``checker`` runs
them in order and ``results`` collects what they find. Import from here.
"""

from ml_connector.diagnostics.checker import Checker, run_checks
from ml_connector.diagnostics.results import FAIL, PASS, SKIP, WARN, CheckResult

__all__ = ["FAIL", "PASS", "SKIP", "WARN", "CheckResult", "Checker", "run_checks"]
