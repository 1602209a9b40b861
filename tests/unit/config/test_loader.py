from __future__ import annotations

from pathlib import Path

import pytest

from ml_connector.config.loader import read_yaml
from ml_connector.errors import ConfigError


def test_an_unquoted_template_gets_a_hint_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("mapping:\n  summary: {{ OrderNo }}\n")
    with pytest.raises(ConfigError, match=r'at line 2.*quote a template that starts with \{\{'):
        read_yaml(path, env={})


def test_store_only_leaves_an_unset_secret_unset_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("ifs:\n  client_secret: ${NOPE_SECRET}\n  url: ${NOPE_URL}\n")
    with pytest.raises(ConfigError, match="NOPE_SECRET"):
        read_yaml(path, env={"NOPE_URL": "http://x"})
    data = read_yaml(path, env={"NOPE_URL": "http://x"}, store_only=True)
    assert "unset" in data["ifs"]["client_secret"] and "NOPE_SECRET" in data["ifs"]["client_secret"]
    with pytest.raises(ConfigError, match="NOPE_URL"):  # only secrets may be missing
        read_yaml(path, env={}, store_only=True)
