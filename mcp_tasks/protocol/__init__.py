"""Wire shapes of the two MCP task dialects. Pure pydantic models and mappings, no I/O.

- ``legacy``: protocol 2025-11-25 (SEP-1686), built from the ``mcp_types`` models.
- ``modern``: protocol 2026-07-28, extension ``io.modelcontextprotocol/tasks`` (SEP-2663).
"""

EXTENSION_ID = "io.modelcontextprotocol/tasks"
LEGACY_VERSION = "2025-11-25"
RELATED_TASK_META = "io.modelcontextprotocol/related-task"
MISSING_CAPABILITY = -32021
