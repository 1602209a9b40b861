"""``ml-connector sim jira`` (filled in by the Jira simulator)."""
