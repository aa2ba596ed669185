"""File tools: checksum a directory tree, find duplicate files by content."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import anyio.to_thread
from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError

from .paths import inside_root, root

CHUNK = 1 << 20
MAX_FILES = 100_000


def _files_under(base: Path) -> list[Path]:
    if base.is_file():
        return [base]
    found = []
    top = root()
    for path in sorted(base.rglob("*")):
        # A link may point outside the root; such files are skipped, never read.
        if path.is_file() and (path.resolve() == top or top in path.resolve().parents):
            found.append(path)
            if len(found) > MAX_FILES:
                raise ToolError(f"more than {MAX_FILES} files under {base}: narrow the path")
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def checksum(path: str, ctx: Context | None) -> dict[str, object]:
    """SHA-256 of every file under ``path`` and one digest of the whole tree."""
    base = inside_root(path)
    files = await anyio.to_thread.run_sync(_files_under, base)
    sums: dict[str, str] = {}
    tree = hashlib.sha256()
    for done, file in enumerate(files):
        if ctx is not None and done % 10 == 0:
            await ctx.report_progress(done, len(files), f"hashed {done} of {len(files)} files")
        digest = await anyio.to_thread.run_sync(_sha256, file)  # cancellable between files
        name = str(file.relative_to(base)) if file != base else file.name
        sums[name] = digest
        tree.update(f"{name}\0{digest}\n".encode())
    return {"files": len(sums), "tree_sha256": tree.hexdigest(), "sha256": sums}


def register(mcp: FastMCP) -> None:
    @mcp.tool(task=True)
    async def checksum_tree(path: str = ".", ctx: Context | None = None) -> dict[str, object]:
        """SHA-256 of every file under a directory (inside the server's root; at most
        100,000 files), and one digest of the whole tree."""
        return await checksum(path, ctx)

    @mcp.tool(task=True)
    async def find_duplicates(path: str = ".", ctx: Context | None = None) -> list[list[str]]:
        """Groups of files with identical content under a directory (inside the server's
        root; at most 100,000 files; size first, then SHA-256), largest groups first."""
        base = inside_root(path)
        files = await anyio.to_thread.run_sync(_files_under, base)
        by_size: defaultdict[int, list[Path]] = defaultdict(list)
        for file in files:
            by_size[file.stat().st_size].append(file)
        candidates = [f for group in by_size.values() if len(group) > 1 for f in group]
        by_digest: defaultdict[str, list[str]] = defaultdict(list)
        for done, file in enumerate(candidates):
            if ctx is not None and done % 10 == 0:
                await ctx.report_progress(done, len(candidates), f"compared {done} files")
            digest = await anyio.to_thread.run_sync(_sha256, file)
            by_digest[digest].append(str(file.relative_to(base)))
        groups = [sorted(g) for g in by_digest.values() if len(g) > 1]
        return sorted(groups, key=lambda g: (-len(g), g))
