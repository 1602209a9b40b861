"""Imports go one way: no module reaches up into a layer that builds on it (issue 12, item 4).

Read from the source with ``ast``, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ml_connector"

# Shared helpers the simulators may use: they stay independent of the product they imitate.
SIM_MAY_IMPORT = ("ml_connector.serve", "ml_connector.sim")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "ml_connector" or n.startswith("ml_connector.")}


def _modules(*parts: str) -> list[Path]:
    root = PACKAGE.joinpath(*parts)
    return [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(
    ("where", "forbidden"),
    [
        (("config",), ("ml_connector.mapping", "ml_connector.engine", "ml_connector.web", "ml_connector.runner")),
        (("template.py",), ("ml_connector.config", "ml_connector.mapping")),
        (("metrics.py",), ("ml_connector.engine", "ml_connector.store", "ml_connector.web", "ml_connector.runner")),
        (("serve.py",), ("ml_connector.sim", "ml_connector.web", "ml_connector.runner", "ml_connector.engine")),
        (("store",), ("ml_connector.engine", "ml_connector.web", "ml_connector.runner", "ml_connector.cli")),
        (("runner",), ("ml_connector.sim", "ml_connector.cli")),
        (("web",), ("ml_connector.sim", "ml_connector.cli", "ml_connector.runner")),
        (("engine",), ("ml_connector.web", "ml_connector.runner", "ml_connector.cli", "ml_connector.sim")),
        (("diagnostics",), ("ml_connector.web", "ml_connector.runner", "ml_connector.cli", "ml_connector.sim")),
    ],
)
def test_no_module_imports_upward(where: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in _modules(*where)
        for name in _imports(path)
        if _under(name, *forbidden)
    }
    assert not wrong, sorted(wrong)


def test_only_the_cli_imports_the_diagnostics() -> None:
    """``ml-connector check`` sits on top of engine, config, clients and store: nothing they build on, nor the web or
    the runner, reaches up into it."""
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in _modules()
        if path.relative_to(PACKAGE).parts[0] not in {"cli", "diagnostics"}
        for name in _imports(path)
        if _under(name, "ml_connector.diagnostics")
    }
    assert not wrong, sorted(wrong)


def test_the_simulators_import_only_shared_helpers() -> None:
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in _modules("sim")
        for name in _imports(path)
        if not _under(name, *SIM_MAY_IMPORT)
    }
    assert not wrong, sorted(wrong)


def test_the_checker_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from ml_connector.sim.server import serve_in_thread\n    import ml_connector.web\n"
    )
    assert _imports(module) == {"ml_connector.sim.server", "ml_connector.web"}
