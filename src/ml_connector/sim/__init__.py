"""Simulators of the far side (IFS Cloud, Jira Cloud): independent implementations, used by tests, demo, bench."""
