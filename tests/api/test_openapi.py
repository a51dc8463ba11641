"""The served OpenAPI document is valid 3.1 and describes exactly the routes that exist."""

from __future__ import annotations

import re
from pathlib import Path

from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from app.api.openapi import ERROR_CODES

PREFIX = "/api/v1"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _document(client) -> dict:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def _operations_in_map(app) -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every API rule, ``<int:x>`` written as ``{x}``."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule[len(PREFIX) :])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((path, method.lower()))
    return found


def _operations_in_document(document: dict) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_document_is_valid_openapi_31(client):
    """openapi-spec-validator accepts the document as OpenAPI 3.1."""
    document = _document(client)
    assert document["openapi"].startswith("3.1")
    validate(document, cls=OpenAPIV31SpecValidator)
    assert document["servers"] == [{"url": PREFIX}]


def test_document_and_url_map_agree(app, client):
    """Every /api/v1 route and method is in the document, and the document has no others."""
    in_map = _operations_in_map(app)
    in_document = _operations_in_document(_document(client))
    assert in_map, "no API routes registered"
    assert in_map - in_document == set(), "routes missing from the document"
    assert in_document - in_map == set(), "documented operations with no route"


def test_security_and_errors_are_described(client):
    """Bearer auth applies everywhere except the document; every error code is listed and
    every protected operation documents its 401."""
    document = _document(client)
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    assert document["security"] == [{"bearerAuth": []}]
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]
    assert set(error["properties"]["error"]["enum"]) == set(ERROR_CODES)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            if path == "/openapi.json":
                assert operation["security"] == []
            else:
                assert "401" in operation["responses"], f"{method} {path} lacks a 401"
            assert "operationId" in operation


def test_documented_error_codes_are_the_ones_the_code_emits():
    """The Error enum lists exactly the codes that app/api can produce, no more, no less."""
    import app.api
    from app.api.errors import HTTP_CODES

    source = "\n".join(p.read_text() for p in Path(app.api.__file__).parent.glob("*.py"))
    emitted = set(HTTP_CODES.values())
    for pattern in (
        r'bad\(\s*"([a-z_]+)"',
        r'ApiError\(\s*\d+,\s*"([a-z_]+)"',
        r'refuse\(\s*\d+,\s*"([a-z_]+)"',
    ):
        emitted |= set(re.findall(pattern, source))
    assert emitted == set(ERROR_CODES)
