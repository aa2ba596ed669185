"""The package's seams, kept by a test: layers point one way and nothing imports in a circle.

- ``engine/`` (the docket: Redis only) imports nothing else of the package and nothing of MCP;
- ``protocol/`` (wire shapes) imports nothing of the engine or the server, and no I/O library;
- no import cycle anywhere, counting imports inside functions and under ``TYPE_CHECKING``
  (a cycle hidden in a function is still a cycle a reader has to untangle);
- every module says why it exists (a docstring) and stays under 400 lines;
- every Redis key name is built in ``engine/keys.py``: no Lua script joins a literal key
  part onto a name (they call the preamble's ``run_key``/``limit_key``/``waiting_key``), and
  the preamble Redis runs builds exactly the names ``Keys`` builds.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import redis

import mcp_tasks
from mcp_tasks.engine.keys import Keys
from mcp_tasks.engine.scripts import preamble

PACKAGE = Path(mcp_tasks.__file__).resolve().parent
IO_LIBRARIES = {"redis", "fakeredis", "httpx", "anyio", "cryptography", "starlette", "uvicorn"}
MCP_LIBRARIES = {"mcp", "fastmcp", "mcp_types"}
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute names), wherever in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)  # submodules
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {target for target in imports(name, path) if target in known and target != name}
        for name, path in known.items()
    }


def test_no_import_cycles() -> None:
    edges = graph()
    # A package's __init__ re-exporting its submodules is not a cycle of meaning; every other
    # edge counts.
    for name in edges:
        edges[name] = {t for t in edges[name] if not (name.startswith(t + ".") and t in edges)}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("mcp_tasks.engine", {"mcp_tasks.protocol", "mcp_tasks.server", "mcp_tasks.client"}),
        ("mcp_tasks.protocol", {"mcp_tasks.engine", "mcp_tasks.server", "mcp_tasks.client"}),
    ],
)
def test_layers_point_one_way(layer: str, forbidden: set[str]) -> None:
    wrong = []
    for name, path in modules().items():
        if name == layer or name.startswith(layer + "."):
            for target in imports(name, path):
                if any(target == f or target.startswith(f + ".") for f in forbidden):
                    wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_protocol_does_no_io_and_engine_knows_no_mcp() -> None:
    wrong = []
    for name, path in modules().items():
        roots = {target.split(".")[0] for target in imports(name, path)}
        if name.startswith("mcp_tasks.protocol") and roots & IO_LIBRARIES:
            wrong.append(f"{name}: {sorted(roots & IO_LIBRARIES)}")
        if name.startswith("mcp_tasks.engine") and roots & MCP_LIBRARIES:
            wrong.append(f"{name}: {sorted(roots & MCP_LIBRARIES)}")
    assert wrong == []


def test_every_module_is_short_and_says_why_it_exists() -> None:
    long = {
        name: lines
        for name, path in modules().items()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    undocumented = [
        name
        for name, path in modules().items()
        if path.read_text().strip() and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
    assert undocumented == []


def test_the_key_layout_has_one_home() -> None:
    joined = re.compile(r"\.\.\s*'[^']*:[a-z_]+:[^']*'")  # prefix .. ':run:' in a script
    scripts = sorted((PACKAGE / "engine" / "lua").glob("*.lua"))
    assert scripts
    wrong = [
        f"{path.name}:{number}: {line.strip()}"
        for path in scripts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith("--") and joined.search(line)
    ]
    assert wrong == [], "key names built outside keys.py:\n" + "\n".join(wrong)


def test_the_preamble_builds_the_names_keys_builds(redis_url: str) -> None:
    keys = Keys("layout-check")
    lua = (
        preamble()
        + "\nreturn {run_key(ARGV[1], ARGV[2]), limit_key(ARGV[1], ARGV[3]), "
        + ("waiting_key(ARGV[1], ARGV[3])}")
    )
    client = redis.Redis.from_url(redis_url)
    try:
        built = client.eval(lua, 0, keys.prefix, "task-1", "limit-1")
    finally:
        client.close()
    assert [b.decode() for b in built] == [  # type: ignore[union-attr]
        keys.run("task-1"),
        keys.limit("limit-1"),
        keys.waiting("limit-1"),
    ]
