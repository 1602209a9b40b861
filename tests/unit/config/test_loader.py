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
