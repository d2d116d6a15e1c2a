"""The floors of README's "How it fits together", enforced.

The README's table gives every Python package a floor and the packages it may
import. This test reads that table and every import statement of every module
(top level, inside functions and under ``TYPE_CHECKING`` alike: a lazy import is
still a dependency) and fails on any import the table does not allow, on a
package that is missing from the table, and on a package list in
``pyproject.toml`` that names a package which does not exist.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Top-level directories that hold no package of the product.
NOT_PACKAGES = {"tests", "bench", "scripts", "typings", "docs", "proto"}


def floors_table() -> dict[str, tuple[int, set[str] | None]]:
    """package -> (floor, allowed imports, or None for "everything above")."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## How it fits together", 1)[1].split("\n## ", 1)[0]
    table: dict[str, tuple[int, set[str] | None]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].isdigit():
            continue
        floor, path, _what, may = cells
        name = path.strip("`").rstrip("/")
        allowed = None if may == "everything above" else set(re.findall(r"`([\w.]+)`", may))
        table[name] = (int(floor), allowed)
    return table


def project_packages(root: Path = ROOT) -> set[str]:
    return {
        p.name
        for p in root.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and p.name not in NOT_PACKAGES
    }


def imported_packages(path: Path, package: str) -> set[str]:
    """Top-level project packages imported anywhere in the module at ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside its own package
                found.add(package)
            elif node.module:
                found.add(node.module.split(".")[0])
    return found


def violations(table: dict[str, tuple[int, set[str] | None]], root: Path = ROOT) -> list[str]:
    known = project_packages(root)
    out: list[str] = []
    for package, (floor, allowed) in sorted(table.items()):
        for path in sorted((root / package).rglob("*.py")):
            for imported in sorted(imported_packages(path, package) & known):
                if imported == package:
                    continue
                target_floor = table[imported][0] if imported in table else None
                ok = (
                    target_floor is not None and target_floor < floor
                    if allowed is None
                    else imported in allowed
                )
                if not ok:
                    where = path.relative_to(root)
                    out.append(f"{where} (floor {floor}) imports {imported}")
    return out


def test_every_package_has_a_floor() -> None:
    table = floors_table()
    assert table, "README's 'How it fits together' table has no floor rows"
    assert project_packages() - set(table) == set()
    assert set(table) - project_packages() == set()


def test_allowed_imports_only_go_down() -> None:
    """The table itself is a map of floors: a package may import lower floors, and a
    package of its own floor only when named and never both ways (no cycles)."""
    table = floors_table()
    for package, (floor, allowed) in table.items():
        for other in allowed or ():
            assert other in table, f"{package} may import {other}, which has no floor"
            assert table[other][0] <= floor, f"{package} (floor {floor}) may import {other}"
            if table[other][0] == floor:
                assert package not in (table[other][1] or ()), f"{package} <-> {other}"


def test_imports_follow_the_floors() -> None:
    assert violations(floors_table()) == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """A ground package importing the roof, even lazily inside a function, is reported."""
    for name in ("zkgrid", "ledger", "cli"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "zkgrid" / "m.py").write_text("def f():\n    from cli import main\n")
    (tmp_path / "cli" / "main.py").write_text("import ledger\nimport zkgrid\n")
    table = floors_table()
    planted = {name: table[name] for name in ("zkgrid", "ledger", "cli")}
    assert violations(planted, tmp_path) == ["zkgrid/m.py (floor 0) imports cli"]


def test_the_verifier_never_imports_the_service() -> None:
    allowed = floors_table()["verifier"][1]
    assert allowed is not None
    assert "service" not in allowed


def test_the_wheel_lists_only_existing_packages() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    names = {p.rstrip("*") for p in patterns}
    assert names == project_packages()
    assert "bench" not in names
