"""Read a JSON document given as text or as a file path (recipes, circuits, results)."""

from __future__ import annotations

import json
import os

__all__ = ["read_json_text"]


def read_json_text(text_or_path, error=ValueError, what: str = "document"):
    """Parse JSON from a string that starts with '{' or '[', else from the file it names."""
    text = os.fspath(text_or_path)
    if not text.lstrip().startswith(("{", "[")):
        with open(text, encoding="utf-8") as handle:
            text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{what} is not valid JSON: {err}") from None
