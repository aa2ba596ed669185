"""Wire shapes of the two MCP task dialects. Pure pydantic models and mappings, no I/O.

- ``legacy``: protocol 2025-11-25 (SEP-1686), built from the ``mcp_types`` models.
- ``modern``: protocol 2026-07-28, extension ``io.modelcontextprotocol/tasks`` (SEP-2663).
"""

from mcp_types.version import MODERN_PROTOCOL_VERSIONS

EXTENSION_ID = "io.modelcontextprotocol/tasks"
LEGACY_VERSION = "2025-11-25"
TASK_VERSIONS = frozenset({LEGACY_VERSION, *MODERN_PROTOCOL_VERSIONS})
"""The protocol versions that have tasks at all; earlier ones (2025-06-18 and before) have
none: tasks/* is -32601 for them and a task-only tool cannot be called."""
RELATED_TASK_META = "io.modelcontextprotocol/related-task"
MISSING_CAPABILITY = -32021
