"""``python -m bench`` (``make bench``)."""

from bench.cli import main

main()
