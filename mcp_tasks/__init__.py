"""mcp-tasks: MCP tools that run as tasks on a Redis Streams docket."""

__version__ = "0.1.0"
