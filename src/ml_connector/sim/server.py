"""Kept for callers of the old path: the uvicorn helper lives in ``ml_connector.serve`` (shared by product and sims)."""

from ml_connector.serve import ServerHandle, free_port, serve_forever, serve_in_thread

__all__ = ["ServerHandle", "free_port", "serve_forever", "serve_in_thread"]
