"""ml-connector benchmark: both simulators in their own processes, the connector under test in a subprocess per
scenario, and a naive baseline script (pycontribs ``jira``), all against the same simulators.

See ``bench/README.md``."""
