"""The web app's routers, one job each: health and metrics, the Jira webhook, dashboard pages, dashboard actions."""
