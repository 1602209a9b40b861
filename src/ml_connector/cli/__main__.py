"""``python -m ml_connector.cli``: the same as the ``ml-connector`` console script."""

from ml_connector.cli.app import main

main()
