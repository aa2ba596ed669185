"""Node.js for the tests that drive a JavaScript client: found, or a clear failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.servers import ROOT


def node_with(folder: Path, *packages: str) -> str:
    """The ``node`` binary, once ``folder``'s npm packages (``@modelcontextprotocol/<name>``)
    are installed; a test that needs them fails (never skips) without."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: this test needs Node.js >= 20", pytrace=False)
    where = folder.relative_to(ROOT)
    for package in packages:
        if not (folder / "node_modules" / "@modelcontextprotocol" / package).is_dir():
            pytest.fail(
                f"{where}/node_modules is missing: run: npm ci --prefix {where}", pytrace=False
            )
    return node
