"""The circuit JSON Schema (``interp/schemas/circuit.schema.json``, draft 2020-12), validation
against it plus the cross-field rules a schema cannot state, and loading a validated `Circuit`.

A failing document raises `CircuitError` whose message names the field (``nodes[1].name``)."""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

import jsonschema

from ..circuit import Circuit, CircuitError, check_schema_version
from ..errors import ArgumentTypeError
from ..jsonio import read_json_text
from .layout import LOGITS

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "circuit.schema.json"


@lru_cache(maxsize=1)
def circuit_schema() -> dict:
    """The circuit JSON Schema (draft 2020-12) as a dict."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _field_path(parts) -> str:
    """``["nodes", 1, "name"]`` -> ``"nodes[1].name"``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def validate_circuit_json(data: Any) -> None:
    """Check a circuit document (parsed JSON) against the schema and its cross-field rules.

    Raises `CircuitError` naming the failing field and the fix; returns None when valid.

    >>> validate_circuit_json({"schema_version": "1.0", "model": "m", "method": "x",
    ...                        "nodes": [{"name": "L0H9x", "role": ""}], "edges": []})
    Traceback (most recent call last):
    ...
    interp.circuit.CircuitError: circuit field nodes[0].name: 'L0H9x' does not match ...
    """
    if isinstance(data, dict) and isinstance(data.get("schema_version"), str):
        check_schema_version(data["schema_version"])  # first: another version's fields differ
    validator = jsonschema.Draft202012Validator(circuit_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = _field_path(list(error.absolute_path) + _offending_key(error))
        allowed = ""
        if error.validator == "additionalProperties":
            allowed = f"; allowed: {list(error.schema.get('properties', {}))}"
        raise CircuitError(
            f"circuit field {where}: {error.message}{allowed} (schema: {SCHEMA_PATH.name}; "
            f"see the field's description there)"
        )
    _check_cross_fields(data)


def _offending_key(error) -> list:
    """The key a 'required' / 'additionalProperties' error is about (it sits one level down)."""
    if not isinstance(error.instance, dict):
        return []
    if error.validator == "required":
        return [k for k in error.validator_value if k not in error.instance][:1]
    if error.validator == "additionalProperties":
        return sorted(k for k in error.instance if k not in error.schema.get("properties", {}))[:1]
    return []


def _check_cross_fields(data: dict) -> None:
    """Rules JSON Schema cannot state: unique names, known edge ends, finite numbers."""
    check_schema_version(data["schema_version"])
    seen: set[str] = set()
    for i, node in enumerate(data["nodes"]):
        if node["name"] in seen:
            raise CircuitError(
                f"circuit field nodes[{i}].name: {node['name']!r} appears twice; "
                f"node names must be unique"
            )
        seen.add(node["name"])
        if "score" in node and not math.isfinite(node["score"]):
            raise CircuitError(
                f"circuit field nodes[{i}].score: {node['score']} is not finite; "
                f"omit the score of an unscored node"
            )
    for i, edge in enumerate(data["edges"]):
        for end in ("source", "target"):
            if edge[end] not in seen and edge[end] != LOGITS:
                raise CircuitError(
                    f"circuit field edges[{i}].{end}: {edge[end]!r} is not a node of "
                    f"the circuit; add it to 'nodes' first"
                )
        if "weight" in edge and not math.isfinite(edge["weight"]):
            raise CircuitError(f"circuit field edges[{i}].weight: {edge['weight']} is not finite")


def load_circuit(source: Union[str, os.PathLike, dict]) -> Circuit:
    """A `Circuit` from a JSON file, JSON text or parsed dict, validated against the schema.

    >>> load_circuit('{"schema_version": "1.0", "model": "m", "method": "x", "nodes": [], '
    ...              '"edges": []}').model
    'm'
    """
    if isinstance(source, dict):
        data = source
    elif not isinstance(source, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"load_circuit takes a path, JSON text or a dict, got {type(source).__name__}"
        )
    else:
        text = str(source).lstrip("\ufeff")
        if not text.lstrip().startswith("{") and Path(text).suffix.lower() in (".graphml", ".xml"):
            raise CircuitError(
                f"{text} is GraphML; load_circuit reads the JSON schema: read GraphML with "
                "interp.export.from_graphml(path)"
            )
        data = read_json_text(text, CircuitError, "circuit")
    validate_circuit_json(data)
    return Circuit.from_dict(data)
