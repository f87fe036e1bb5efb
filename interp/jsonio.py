"""Read a JSON document given as text or as a file path (recipes, circuits, results)."""

from __future__ import annotations

import json
import os

__all__ = ["read_json_text", "write_json_text"]


def read_json_text(text_or_path, error=ValueError, what: str = "document"):
    """Parse JSON from a string that starts with '{' or '[', else from the file it names.

    A missing file, a folder, an unreadable file or a byte-order mark-prefixed text are answered
    with `error` naming the path (a CLI user sees one line, not a traceback)."""
    text = os.fspath(text_or_path).lstrip("\ufeff")
    if not text.lstrip().startswith(("{", "[")):
        if os.path.isdir(text):
            raise error(f"{what} {text!r} is a folder; give the .json file inside it")
        try:
            with open(text, encoding="utf-8-sig") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise error(f"{what}: no file {text!r} (and it is not JSON text); check the path")
        except (OSError, UnicodeDecodeError) as err:
            raise error(f"{what}: cannot read {text!r}: {err}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{what} is not valid JSON: {err}") from None


def write_json_text(data, path=None, indent: int = 2) -> str:
    """JSON text of `data`; also written to `path` (with a final newline) when one is given."""
    text = json.dumps(data, indent=indent)
    if path is not None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return text
