"""A tool that asks the user to confirm before it acts (input_required mid-task)."""

from __future__ import annotations

from fastmcp import Context, FastMCP

from .files import checksum


def register(mcp: FastMCP) -> None:
    @mcp.tool(task=True)
    async def confirm_and_checksum(path: str, ctx: Context) -> str:
        """Ask the user to confirm, then checksum the tree (a stand-in for a destructive or
        costly action that must not run without a yes)."""
        answer = await ctx.elicit(f"Checksum everything under {path!r}?", bool)
        if answer.action != "accept" or not answer.data:
            return "not confirmed: nothing done"
        summary = await checksum(path, ctx)
        return f"{summary['files']} files, tree sha256 {summary['tree_sha256']}"
