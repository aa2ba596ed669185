"""fastmcp glue: the ``Tasks`` extension, both dialects' handlers, and the worker context."""

from .extension import Tasks

__all__ = ["Tasks"]
