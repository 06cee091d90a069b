"""The phone and provider doors and the health endpoints in the OpenAPI document (a
postprocessing hook).

These are plain Django views speaking other programs' protocols (the SMSSync app, smsgate's
MSync, each cloud provider's webhook format), so drf-spectacular cannot see them; they are
described here by hand, with how each one authenticates as a security scheme. They do not use
the API's error envelope: each answers failures in its protocol's own shape, documented per
operation.
"""

from __future__ import annotations

from typing import Any

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "smssyncSecret": {
        "type": "apiKey",
        "in": "query",
        "name": "secret",
        "description": "The device's SMSSync secret (shown when the device is registered). "
        "Task requests carry it as `?secret=`; an incoming SMS carries it as the `secret` "
        "form (or JSON) field of the body.",
    },
    "smssyncBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "`device id : device token` as user and password in the Sync URL "
        "(`https://dev_…:token@host/api/sms/smssync`). When a secret is sent too, both must "
        "name the same device.",
    },
    "msyncDeviceToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The device token: `Authorization: Bearer <token>`; the body's "
        "`device_id` must be that device's id (else 403).",
    },
    "twilioSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Twilio-Signature",
        "description": "Twilio's HMAC-SHA1, with the app's `auth_token`, over the public URL "
        "(SMSGATE_PUBLIC_URL + path and query) and the sorted form parameters. Required.",
    },
    "vonageSignature": {
        "type": "apiKey",
        "in": "query",
        "name": "sig",
        "description": "Vonage's signed-webhook `sig` (with `timestamp`), checked with the "
        "app's `signature_secret` and `signature_method` when the app has a signature secret; "
        "sent in the query or the body like the other parameters.",
    },
    "africastalkingToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The app's shared `token`, appended to the receive URL as `?token=` "
        "when the app has one.",
    },
}

_SMSSYNC_FAILURE = {"payload": {"success": False, "error": "unknown device or wrong secret"}}
_SMSSYNC_OK = {"payload": {"success": True, "error": None}}
_UUID = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"


def _json(example: Any, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": schema or {"type": "object"}, "example": example}
        },
    }


def _text(example: str, description: str, media: str = "text/plain") -> dict[str, Any]:
    return {
        "description": description,
        "content": {media: {"schema": {"type": "string"}, "example": example}},
    }


_SMSSYNC_TASK = {
    "name": "task",
    "in": "query",
    "required": False,
    "description": "Absent for an incoming SMS; `send` polls for messages to send, `sent` "
    "confirms which were queued on the phone, `result` reports or polls delivery results.",
    "schema": {"type": "string", "enum": ["send", "sent", "result"]},
}


def _smssync_operation(method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"sms_smssync_{method}",
        "tags": ["phones"],
        "security": [{"smssyncSecret": []}, {"smssyncBasic": []}],
        "parameters": [_SMSSYNC_TASK],
        "responses": {
            "200": _json(
                {
                    "payload": {
                        "task": "send",
                        "secret": "s3cr3t",
                        "messages": [{"to": "+254712345678", "message": "Hi", "uuid": _UUID}],
                    }
                },
                "The protocol's answer. A wrong secret is also a 200, with "
                f"`{_SMSSYNC_FAILURE}` (the app shows the error), and nothing is stored but "
                "the raw request.",
            ),
            "400": _json(
                {"payload": {"success": False, "error": "nothing to do for GET task=''"}},
                "A task/method the protocol does not have, or a body it cannot read.",
            ),
            "413": _json(
                {"payload": {"success": False, "error": "the body is larger than 1048576 bytes"}},
                "The body is larger than SMSGATE_MAX_BODY_BYTES.",
            ),
        },
    }
    if method == "get":
        operation["summary"] = "SMSSync: poll for messages to send (task=send) or results"
        operation["description"] = (
            "`?task=send` hands the device its queued messages (they become `dispatched` "
            "and are never offered again); `?task=result` lists the uuids awaiting results."
        )
    else:
        operation["summary"] = "SMSSync: forward an incoming SMS, or report sent/results"
        operation["description"] = (
            "Without `task`: an incoming SMS as the SMSSync app posts it (form, JSON or XML "
            "fields `from`, `message`, `sent_timestamp`, `sent_to`, `message_id`, `device_id`, "
            "`secret`); the answer may carry instant replies in `payload.messages`. "
            '`?task=sent` with `{"queued_messages": [uuids]}` answers `{"message_uuids": '
            '[…]}`; `?task=result` with `{"message_result": […]}` applies delivery results.'
        )
        operation["requestBody"] = {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                    "example": {
                        "from": "+254712345678",
                        "message": "Hello",
                        "message_id": "42",
                        "sent_timestamp": "1764763200000",
                        "sent_to": "+254700000001",
                        "secret": "s3cr3t",
                        "device_id": "1",
                    },
                },
                "application/json": {
                    "schema": {"type": "object"},
                    "example": {"queued_messages": [_UUID]},
                },
            }
        }
        operation["responses"]["200"] = _json(
            _SMSSYNC_OK, operation["responses"]["200"]["description"]
        )
    return operation


def _msync_error(code: str, message: str, description: str) -> dict[str, Any]:
    error = {"error": {"code": code, "message": message, "fields": {}}}
    return _json(error, description, {"$ref": "#/components/schemas/Error"})


MSYNC: dict[str, Any] = {
    "operationId": "sms_msync",
    "tags": ["phones"],
    "summary": "MSync: a phone's JSON actions (incoming, outgoing, status, location, delivery)",
    "description": "One JSON object with an `action` and the device's `device_id`. `incoming` "
    "stores `messages` (≤ 500); `outgoing` claims queued messages (`limit`); `status` and "
    "`location` record health; `delivery` applies `reports`. `sim_slot` numbers SIMs as in "
    "the device's registration.",
    "security": [{"msyncDeviceToken": []}],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["action", "device_id"],
                    "properties": {
                        "action": {
                            "type": "string",
                            "enum": ["incoming", "outgoing", "status", "location", "delivery"],
                        },
                        "device_id": {"type": "string"},
                    },
                    "additionalProperties": True,
                },
                "examples": {
                    "incoming": {
                        "value": {
                            "action": "incoming",
                            "device_id": "dev_01hx…",
                            "messages": [
                                {
                                    "from": "+254712345678",
                                    "message": "Hello",
                                    "timestamp": "2026-12-03T10:00:00Z",
                                    "sim_slot": 1,
                                    "id": "sms-1",
                                }
                            ],
                        }
                    },
                    "outgoing": {
                        "value": {"action": "outgoing", "device_id": "dev_01hx…", "limit": 10}
                    },
                    "delivery": {
                        "value": {
                            "action": "delivery",
                            "device_id": "dev_01hx…",
                            "reports": [{"uuid": _UUID, "status": "delivered"}],
                        }
                    },
                },
            }
        },
    },
    "responses": {
        "200": _json(
            {"success": True, "received": 1, "duplicates": 0},
            "The action's answer: `{success, received, duplicates}` for incoming, "
            "`{messages: [{id, to, message, uuid, sim_slot}]}` for outgoing, `{success}` for "
            "status and location, `{success, updated}` for delivery.",
        ),
        "400": _msync_error("unknown_action", "`action` must be one of …", "Bad body or action."),
        "401": _msync_error(
            "not_authenticated", "The device token is not valid.", "Missing or wrong token."
        ),
        "403": _msync_error(
            "permission_denied",
            "`device_id` must be the id of the device this token belongs to.",
            "The token belongs to another device.",
        ),
        "405": _msync_error("method_not_allowed", "MSync takes POST requests only.", "Not POST."),
        "413": _msync_error("body_too_large", "The body is larger than …", "Body too large."),
    },
}


def _receive_operation(method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"sms_apps_receive_{method}",
        "tags": ["providers"],
        "summary": "Provider webhook: an inbound SMS or a delivery report for an app"
        + (" (query parameters)" if method == "get" else ""),
        "description": "Paste the app's `receive_url` into the provider's console. The "
        "provider's own format is accepted: Twilio (form, signed with X-Twilio-Signature), "
        "Vonage (query, form or JSON; `sig` when the app has a signature secret), Africa's "
        "Talking (form POST; `?token=` when the app has a token), Agile Telecom (form POST "
        "`originator`, `destination`, `date_time`, `text`; it has no signature, so "
        "`destination` must be one of the app's numbers). Retries of the same message are "
        "acknowledged and not stored twice.",
        # Agile Telecom (and Vonage/Africa's Talking apps without a secret) send no credential.
        "security": [
            {"twilioSignature": []},
            {"vonageSignature": []},
            {"africastalkingToken": []},
            {},
        ],
        "parameters": [
            {
                "name": "app_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "The provider app's id (`app_…`).",
            }
        ],
        "responses": {
            "200": {
                "description": "Accepted, in the provider's shape: TwiML for Twilio (with "
                "`<Message>` replies when automation answers), `+OK` for Agile Telecom, an "
                "empty 200 for Vonage and Africa's Talking.",
                "content": {
                    "text/xml": {
                        "schema": {"type": "string"},
                        "example": '<?xml version="1.0" encoding="UTF-8"?><Response/>',
                    },
                    "text/plain": {"schema": {"type": "string"}, "example": "+OK"},
                },
            },
            "400": _text("-ERR destination is required", "A required field is missing."),
            "403": _text("", "Bad signature or token (`invalid_signature`, `invalid_token`)."),
            "404": _json(
                {
                    "error": {
                        "code": "not_found",
                        "message": "There is no enabled provider app 'app_x'.",
                        "fields": {},
                    }
                },
                "No enabled app with this id.",
                {"$ref": "#/components/schemas/Error"},
            ),
            "413": _json(
                {
                    "error": {
                        "code": "body_too_large",
                        "message": "The body is too large.",
                        "fields": {},
                    }
                },
                "The body is larger than SMSGATE_MAX_BODY_BYTES.",
                {"$ref": "#/components/schemas/Error"},
            ),
        },
    }
    if method == "post":
        operation["requestBody"] = {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                    "examples": {
                        "twilio": {
                            "value": {
                                "MessageSid": "SM0123456789abcdef0123456789abcdef",
                                "From": "+254712345678",
                                "To": "+254709000111",
                                "Body": "Hello",
                            }
                        },
                        "africastalking": {
                            "value": {
                                "id": "at-1",
                                "from": "+254712345678",
                                "to": "12345",
                                "text": "Hello",
                                "date": "2026-12-03 10:00:00",
                            }
                        },
                        "agiletelecom": {
                            "value": {
                                "originator": "+393331234567",
                                "destination": "+393400000001",
                                "date_time": "20261203100000",
                                "text": "Ciao",
                            }
                        },
                    },
                },
                "application/json": {
                    "schema": {"type": "object"},
                    "example": {
                        "msisdn": "254712345678",
                        "to": "254709000111",
                        "messageId": "0A0000000123ABCD1",
                        "text": "Hello",
                        "type": "text",
                    },
                },
            }
        }
    return operation


HEALTHZ: dict[str, Any] = {
    "operationId": "healthz",
    "tags": ["health"],
    "summary": "Liveness and readiness: database and broker reachable",
    "security": [{}],
    "responses": {
        "200": _json({"status": "ok", "database": "ok", "broker": "ok"}, "All is well."),
        "503": _json(
            {"status": "error", "database": "ok", "broker": "unreachable"},
            "The database or the broker cannot be reached.",
        ),
    },
}

METRICS: dict[str, Any] = {
    "operationId": "metrics",
    "tags": ["health"],
    "summary": "Prometheus metrics (admin key or an allowed address)",
    "security": [{"apiKey": []}],
    "responses": {
        "200": _text(
            'smsgate_messages_total{direction="outbound",status="delivered"} 12\n',
            "Prometheus text format.",
        ),
        "401": _msync_error("not_authenticated", "…", "No admin key and not an allowed address."),
        "403": _msync_error("permission_denied", "…", "A staff key."),
    },
}

DOOR_TAGS = ("phones", "providers", "health")


def add_doors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Add the phone and provider doors and the health endpoints, with their auth schemes."""
    paths = result.setdefault("paths", {})
    paths["/api/sms/smssync"] = {
        "get": _smssync_operation("get"),
        "post": _smssync_operation("post"),
    }
    paths["/api/sms/msync"] = {"post": MSYNC}
    paths["/api/sms/apps/{app_id}/receive"] = {
        "get": _receive_operation("get"),
        "post": _receive_operation("post"),
    }
    paths["/healthz"] = {"get": HEALTHZ}
    paths["/metrics"] = {"get": METRICS}
    schemes = result.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.update(SECURITY_SCHEMES)
    tags = result.setdefault("tags", [])
    tags.append({"name": "health", "description": "Health check and Prometheus metrics."})
    return result
