"""OpenAPI document fixes that apply to every operation (drf-spectacular postprocessing hooks).

drf-spectacular only documents the success responses a view declares, but every API operation
can also answer with the error envelope of docs/api.md#errors (bad input, missing key, wrong role,
unknown id, throttling, ...). The fuzz suite (tests/fuzz) checks that each response's status
code and body are described by the document, so the envelope is added here once instead of on
every `extend_schema`.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"

# Status -> what it means for an integrator; every operation may answer any of these.
ERROR_STATUSES: dict[str, str] = {
    "400": "The request is not valid (`invalid`); `fields` names each bad field.",
    "401": "The API key is missing, unknown or revoked (`not_authenticated`).",
    "403": "The key's role may not do this (`permission_denied`).",
    "404": "Nothing with this id (`not_found`).",
    "405": "This method is not allowed here (`method_not_allowed`).",
    "406": "The `Accept` header asks for a format the API cannot produce (`not_acceptable`).",
    "409": "The request conflicts with the current state (`conflict`).",
    "413": "The request body is too large (`body_too_large`).",
    "415": "The request body's content type is not supported (`unsupported_media_type`).",
    "422": "Valid input the platform will not act on (e.g. `recipient_opted_out`).",
    "429": "Too many requests (`rate_limited`); retry after the `Retry-After` seconds.",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The error envelope every API error uses.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "A stable snake_case code."},
                "message": {"type": "string", "description": "A sentence for people."},
                "fields": {
                    "type": "object",
                    "description": "Per-field messages for `invalid` requests; empty otherwise.",
                    "additionalProperties": True,
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document the error envelope for every 4xx an operation can answer with."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status_code, description in ERROR_STATUSES.items():
                responses.setdefault(
                    status_code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
