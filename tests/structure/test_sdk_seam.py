"""Every reach into another package's private names lives in one module per package.

``mcp_tasks/sdk.py`` holds fastmcp's and mcp's, ``mcp_tasks/engine/fakeredis_lua.py``
fakeredis's (the engine may not import the former). Each release of those is then an audit
of one module. The scan below finds what a
``grep`` for underscore names would, without its false alarms: an attribute ``obj._name``
on anything but ``self``/``cls``, ``getattr(obj, "_name")``, and an import of an underscore
name or from an underscore module. The version check that guards those reaches is tested
here too.
"""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from mcp_tasks import sdk

PACKAGE = Path(sdk.__file__).resolve().parent
SEAMS = (Path(sdk.__file__).resolve(), PACKAGE / "engine" / "fakeredis_lua.py")


def private_reaches(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "getattr",
            "setattr",
            "hasattr",
        ):
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                name = node.args[1].value
                if isinstance(name, str) and _private(name):
                    found.append(f"{where}: getattr {name}")
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            parts = (node.module or "").split(".")
            for alias in node.names:
                if _private(alias.name) or any(_private(part) for part in parts):
                    found.append(f"{where}: from {node.module} import {alias.name}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_only_the_seam_modules_touch_private_names() -> None:
    outside = [
        reach
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in SEAMS
        for reach in private_reaches(path)
    ]
    assert outside == [], "private names outside the seam modules:\n" + "\n".join(outside)
    for seam in SEAMS:
        assert private_reaches(seam), f"the scan finds nothing in {seam.name}: it is broken"


def test_the_installed_sdks_are_supported() -> None:
    sdk.check_versions()
    for package, specifier in sdk.SUPPORTED.items():
        assert importlib.metadata.version(package) in SpecifierSet(specifier)


@pytest.mark.parametrize(
    ("installed", "complaint"),
    [
        ({"fastmcp": "4.3.0", "mcp": "2.3.0"}, "supports fastmcp>=4.1.2,<4.3, but fastmcp 4.3.0"),
        ({"fastmcp": "4.0.9", "mcp": "2.3.0"}, "but fastmcp 4.0.9 is installed"),
        ({"fastmcp": "4.2.3", "mcp": "3.0.0"}, "supports mcp>=2.3,<3, but mcp 3.0.0"),
    ],
)
def test_an_unsupported_sdk_fails_at_import_with_a_clear_message(
    installed: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ImportError, match="pip install") as refused:
        sdk.check_versions(installed.__getitem__)
    assert complaint in str(refused.value)
