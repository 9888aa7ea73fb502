"""Validation of SARIF documents against the official SARIF 2.1.0 schema (OASIS, errata 01,
vendored in data/ from oasis-tcs/sarif-spec sarif-2.1/schema/), with format checking on
(`uri-reference` needs rfc3987, a dev dependency)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
_VALIDATOR = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def validate_sarif(document: object) -> None:
    """Fail with every schema error of document, each with its place."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _VALIDATOR.iter_errors(document)]
    if errors:
        raise AssertionError("invalid SARIF:\n" + "\n".join(errors))
