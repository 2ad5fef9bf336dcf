"""The engine never imports the TUI or Textual: the import-linter contracts hold.

The contracts live in pyproject.toml. import-linter needs ``include_external_packages``
for a forbidden *external* module (textual); when the project config lacks it, the test
runs the same contracts with that flag set rather than failing on configuration.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace('"', '\\"') + '"'


def test_import_linter_contracts_pass(tmp_path: Path) -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert any("textual" in c.get("forbidden_modules", []) for c in cfg["contracts"])
    cfg = {**cfg, "include_external_packages": True}
    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in cfg.items() if k != "contracts"]
    for c in cfg["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in c.items()]
    config = tmp_path / "importlinter.toml"
    config.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [sys.executable, "-c", LINT, "--config", str(config), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "The engine never imports the TUI or Textual KEPT" in proc.stdout


def test_engine_imports_without_textual() -> None:
    code = (
        "import sys, engine.store, engine.search.tree, engine.search.events, engine.problems;"
        "assert not any(m == 'textual' or m.startswith(('textual.', 'bdc_tui')) for m in sys.modules), "
        "sorted(m for m in sys.modules if 'textual' in m or 'bdc_tui' in m)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
