"""Validating bodies against Zoom's Meetings OpenAPI spec.

The spec is the repository's own copy, ``tests/data/zoom/`` (provenance in its README.md).
Schemas are addressed by JSON pointer into the whole document, held in a ``referencing``
registry, so any ``$ref`` inside resolves against the spec itself.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_NAME = "zoom-meetings-openapi-2025.json"
SPEC_DIR = Path(__file__).resolve().parent.parent / "data" / "zoom"
SPEC_URI = "urn:telemed:zoom-meetings-openapi"

# Zoom's error body. The spec documents error codes only in prose, with no schema.
ZOOM_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string", "minLength": 1}},
}


# Zoom's OAuth endpoints (zoom.us/oauth/authorize, /oauth/token) are not part of the
# Meetings spec. These schemas follow Zoom's OAuth documentation, so the simulator's new
# endpoints and our token requests are held to a written contract too.
_TOKEN_PROPERTIES: dict[str, Any] = {
    "access_token": {"type": "string", "minLength": 1},
    "token_type": {"type": "string", "enum": ["bearer"]},
    "expires_in": {"type": "number", "exclusiveMinimum": 0},
    "scope": {"type": "string"},
    "refresh_token": {"type": "string", "minLength": 1},
    "api_url": {"type": "string"},
}
OAUTH_ACCOUNT_TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["access_token", "token_type", "expires_in", "scope"],
    "properties": _TOKEN_PROPERTIES, "additionalProperties": False,
}
OAUTH_USER_TOKEN_SCHEMA: dict[str, Any] = {
    **OAUTH_ACCOUNT_TOKEN_SCHEMA,
    "required": ["access_token", "token_type", "expires_in", "scope", "refresh_token"],
}
OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error", "reason"], "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "enum": ["invalid_grant", "invalid_client", "invalid_request",
                                             "unsupported_grant_type", "unauthorized_client"]},
        "reason": {"type": "string", "minLength": 1},
    },
}
_FORM = {"type": "string", "minLength": 1}
OAUTH_TOKEN_REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {
    "account_credentials": {
        "type": "object", "required": ["grant_type", "account_id"], "additionalProperties": False,
        "properties": {"grant_type": _FORM, "account_id": _FORM},
    },
    "authorization_code": {
        "type": "object", "required": ["grant_type", "code", "redirect_uri"], "additionalProperties": False,
        "properties": {"grant_type": _FORM, "code": _FORM, "redirect_uri": _FORM,
                       "code_verifier": {"type": "string", "pattern": "^[A-Za-z0-9._~-]{43,128}$"}},
    },
    "refresh_token": {
        "type": "object", "required": ["grant_type", "refresh_token"], "additionalProperties": False,
        "properties": {"grant_type": _FORM, "refresh_token": _FORM},
    },
}
OAUTH_AUTHORIZE_QUERY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["response_type", "client_id", "redirect_uri", "state", "code_challenge",
                                   "code_challenge_method"],
    "additionalProperties": False,
    "properties": {
        "response_type": {"type": "string", "enum": ["code"]}, "client_id": _FORM,
        "redirect_uri": {"type": "string", "pattern": "^https?://"}, "state": {"type": "string", "minLength": 32},
        "code_challenge": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
        "code_challenge_method": {"type": "string", "enum": ["S256"]},
    },
}


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Why ``instance`` does not match one of the local schemas above."""
    validator = OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    return sorted(_describe(e) for e in validator.iter_errors(instance))


class SpecMissing(FileNotFoundError):
    pass


def spec_path() -> Path:
    return SPEC_DIR / SPEC_NAME


def load_spec() -> dict[str, Any]:
    return _load(str(spec_path()))


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise SpecMissing(
            f"Zoom OpenAPI spec not found at {file}: it is part of the repository "
            f"(see {SPEC_DIR / 'README.md'}); restore it from git."
        )
    spec: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return spec


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def request_pointer(path: str, method: str) -> str:
    return f"/paths/{_escape(path)}/{method.lower()}/requestBody/content/application~1json/schema"


def response_pointer(path: str, method: str, status: int) -> str:
    return f"/paths/{_escape(path)}/{method.lower()}/responses/{status}/content/application~1json/schema"


def schema_at(pointer: str) -> dict[str, Any]:
    node: Any = load_spec()
    for part in pointer.strip("/").split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            raise KeyError(f"the spec has nothing at {pointer}")
        node = node[key]
    resolved: dict[str, Any] = _resolve(node)
    return resolved


def documented_statuses(path: str, method: str) -> set[int]:
    responses = load_spec()["paths"][path][method.lower()]["responses"]
    return {int(code) for code in responses if code.isdigit()}


def request_errors(path: str, method: str, body: Any) -> list[str]:
    """Why ``body`` is not a valid request body for the operation (empty: it is)."""
    return _errors(OAS30WriteValidator, request_pointer(path, method), body)


def response_errors(path: str, method: str, status: int, body: Any) -> list[str]:
    """Why ``body`` is not a valid response body for the operation and status."""
    return _errors(OAS30ReadValidator, response_pointer(path, method, status), body)


def error_body_errors(body: Any) -> list[str]:
    validator = OAS30ReadValidator(ZOOM_ERROR_SCHEMA, format_checker=oas30_format_checker)
    return [_describe(e) for e in validator.iter_errors(body)]


def undeclared_fields(pointer: str, instance: Any) -> list[str]:
    """Dotted names of fields in ``instance`` that the schema does not declare.

    OpenAPI objects allow extra properties unless told otherwise; Zoom ignores unknown
    fields silently, so a misspelt security setting would be lost without this check.
    """
    return _undeclared(schema_at(pointer), instance, "")


def _errors(validator_class: Any, pointer: str, instance: Any) -> list[str]:
    schema_at(pointer)  # a clear KeyError when the operation or status is not in the spec
    validator = validator_class(
        {"$ref": f"{SPEC_URI}#{pointer}"}, registry=_registry(), format_checker=oas30_format_checker
    )
    return sorted(_describe(e) for e in validator.iter_errors(instance))


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "<root>"
    return f"{where}: {error.message}"


@lru_cache(maxsize=4)
def _registry_for(path: str) -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(_load(path), default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


def _registry() -> Registry[Any]:
    return _registry_for(str(spec_path()))


def _resolve(schema: Any) -> Any:
    if isinstance(schema, dict) and "$ref" in schema:
        resolved = _registry().resolver(base_uri=SPEC_URI).lookup(schema["$ref"])
        return _resolve(resolved.contents)
    return schema


def _declared(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Properties declared by a schema and its allOf/anyOf/oneOf parts; and whether open."""
    properties: dict[str, Any] = dict(schema.get("properties", {}))
    open_ended = schema.get("additionalProperties", False) is not False
    for keyword in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(keyword, []):
            more, part_open = _declared(_resolve(part))
            properties.update(more)
            open_ended = open_ended or part_open
    return properties, open_ended


def _undeclared(schema: Any, instance: Any, prefix: str) -> list[str]:
    schema = _resolve(schema)
    if not isinstance(schema, dict):
        return []
    if isinstance(instance, dict):
        properties, open_ended = _declared(schema)
        found = []
        for key, value in instance.items():
            name = f"{prefix}{key}"
            if key in properties:
                found.extend(_undeclared(properties[key], value, name + "."))
            elif not open_ended:
                found.append(name)
        return found
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        found = []
        for index, item in enumerate(instance):
            found.extend(_undeclared(schema["items"], item, f"{prefix}[{index}]."))
        return found
    return []
