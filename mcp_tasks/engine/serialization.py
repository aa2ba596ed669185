"""JSON text for everything the docket stores: arguments, results, questions, answers, meta.

pydantic_core is fast and knows pydantic models, datetimes and the like, but it refuses two
kinds of value that a JSON-RPC request can legally carry and that a tool called directly
accepts: strings holding lone UTF-16 surrogates (``"\\ud800"`` is valid JSON, and Python
decodes it to a ``str`` that cannot be encoded as UTF-8), and nesting deeper than its
recursion limits (about 200 levels to read, 255 to write). A task call and a plain call of the
same tool must agree, so those values fall back to the standard library, which writes
surrogates as ``\\u`` escapes (ASCII, so Redis and every codec take them) and reads them back
to the same ``str``, and nests as deep as the interpreter's recursion limit. Never pickle.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core


def to_json_text(value: Any) -> str:
    """``value`` as JSON text; raises ``TypeError``/``ValueError`` when it cannot be."""
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError:
        pass  # surrogates or depth: the standard library below, or its own clear error
    try:
        return json.dumps(
            value,
            ensure_ascii=True,
            separators=(",", ":"),
            default=pydantic_core.to_jsonable_python,
        )
    except RecursionError:
        raise ValueError("the value is nested too deeply to store") from None


def from_json_text(raw: str | bytes) -> Any:
    """The value of JSON text written by :func:`to_json_text` (or any valid JSON)."""
    try:
        return pydantic_core.from_json(raw)
    except ValueError:
        try:
            return json.loads(raw)
        except RecursionError:
            raise ValueError("the stored value is nested too deeply to read") from None
