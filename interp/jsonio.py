"""Read the files a user names (recipes, circuits, results, item tables, haystacks), with
errors that name the path: a missing file, a folder or an unreadable file is one typed error,
not a traceback."""

from __future__ import annotations

import json
import os

__all__ = ["read_user_file", "read_json_text", "write_json_text"]


def read_user_file(path, error=ValueError, what: str = "file") -> str:
    """The text of the file at `path` (UTF-8, a byte-order mark dropped), or `error` naming the
    path when it is missing, a folder or unreadable."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise error(f"{what} {path!r} is a folder; give the file inside it")
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except FileNotFoundError:
        raise error(f"{what}: no file {path!r}; check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{what}: cannot read {path!r}: {err}") from None


def read_json_text(text_or_path, error=ValueError, what: str = "document"):
    """Parse JSON from a string that starts with '{' or '[', else from the file it names.

    A missing file, a folder, an unreadable file or a byte-order mark-prefixed text are answered
    with `error` naming the path (a CLI user sees one line, not a traceback)."""
    text = os.fspath(text_or_path).lstrip("\ufeff")
    if not text.lstrip().startswith(("{", "[")):
        text = read_user_file(text, error, what)
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
