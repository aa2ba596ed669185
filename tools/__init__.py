"""The ready long-running tools the shipped server offers, each a task.

``server.py`` imports this folder by path (``fastmcp run`` puts the server's folder first on
``sys.path``); it is not installed as a package, so it never clashes with another ``tools``.
"""

from __future__ import annotations

from fastmcp import FastMCP

from . import compute, demo, files, interactive, web


def register(mcp: FastMCP) -> None:
    for module in (demo, files, web, compute, interactive):
        module.register(mcp)
