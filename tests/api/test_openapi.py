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


def test_the_response_check_refuses_what_the_document_does_not_describe(app, client):
    """The check every API test's responses go through (tests/api/conftest.py) is not a
    formality: a missing field, an extra field, a wrong type, an undocumented status, an error
    code outside the enum and a non-JSON body are each refused."""
    import json

    import pytest

    from tests.api.conftest import UndocumentedResponse, check_documented

    document = _document(client)

    def answer(body, status=200, mimetype="application/json"):
        text = body if isinstance(body, str) else json.dumps(body)
        return app.response_class(text, status=status, mimetype=mimetype)

    group = {"id": 1, "slug": "desk", "name": "Desk", "system": False, "members": [2]}
    check_documented(document, "GET", f"{PREFIX}/groups", answer({"groups": [group]}))
    bad = [
        ("GET", "/groups", answer({"groups": [{**group, "members": ["2"]}]})),
        ("GET", "/groups", answer({"groups": [{k: v for k, v in group.items() if k != "slug"}]})),
        ("GET", "/groups", answer({"groups": [group], "extra": 1})),
        ("GET", "/groups", answer({"groups": []}, status=418)),
        ("GET", "/groups", answer({"error": "teapot", "message": "No."}, status=403)),
        ("GET", "/groups", answer("<html></html>", mimetype="text/html")),
        ("POST", "/bookings/1/cancel", answer({"error": "conflict", "message": "x"}, 201)),
        ("GET", "/no-such-thing", answer({"nothing": True}, status=200)),
    ]
    for method, path, response in bad:
        with pytest.raises(UndocumentedResponse):
            check_documented(document, method, PREFIX + path, response)
    # Unknown paths and methods may only answer the Error shape.
    check_documented(
        document, "GET", f"{PREFIX}/nope", answer({"error": "not_found", "message": "x"}, 404)
    )


def test_api_test_clients_check_their_responses(app, client):
    """The fixture really is in place for the clients API tests use."""
    from tests.api.conftest import DocumentedClient

    assert isinstance(client, DocumentedClient)
    assert isinstance(app.test_client(), DocumentedClient)


def test_field_specific_error_codes_are_documented():
    """Codes the request models give their fields (e.g. start -> malformed_datetime) are in
    the Error enum too."""
    from app.api import schemas

    def models(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from models(sub)

    used = {code for model in models(schemas.Shape) for code in model.error_codes.values()}
    assert used and used <= set(ERROR_CODES)
