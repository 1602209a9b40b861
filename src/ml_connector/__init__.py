"""ml-connector: keeps IFS Cloud purchase orders and work orders in step with Jira Cloud issues."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ml-connector")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
