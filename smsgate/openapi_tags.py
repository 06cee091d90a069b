"""Tags and one-line summaries for every operation of the OpenAPI document (a postprocessing
hook), so /api/docs/ reads as areas with a sentence per operation instead of one flat list.

Kept in one table rather than in `extend_schema` on each view: the wording is reviewed in one
place, and tests/api/test_openapi_docs.py fails when an operation is added without a summary.
"""

from __future__ import annotations

from typing import Any

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# (tag, description), in the order the docs page shows them.
TAGS: list[tuple[str, str]] = [
    ("messages", "Send SMS and follow each message's status."),
    ("conversations", "Threads: one per contact number."),
    ("devices", "Android phones that send and receive through their SIMs."),
    ("provider apps", "Cloud number accounts: Twilio, Vonage, Africa's Talking, Agile Telecom."),
    ("routing", "The routing policy: the fallback provider app, re-routing and quiet hours."),
    ("webhooks", "Endpoints notified of events, and their deliveries."),
    ("rules", "Automation: keyword rules that reply, tag, forward or call a webhook."),
    ("opt-outs", "Numbers that sent STOP (or were added by hand) and get no messages."),
    ("API keys", "Keys for this API (admin only)."),
    ("compatibility", "Send endpoints shaped like other gateways' APIs, for drop-in clients."),
    ("phones", "Where the phone apps (SMSSync, MSync) talk to the server. Not for API keys."),
    ("providers", "Where cloud providers post inbound SMS and delivery reports."),
]

# Path prefix -> tag; the longest matching prefix wins.
TAG_BY_PREFIX: dict[str, str] = {
    "/api/v1/messages": "messages",
    "/api/v1/send": "compatibility",
    "/v1/sms/send": "compatibility",
    "/api/v1/conversations": "conversations",
    "/api/v1/devices": "devices",
    "/api/v1/apps": "provider apps",
    "/api/v1/routing": "routing",
    "/api/v1/webhooks": "webhooks",
    "/api/v1/rules": "rules",
    "/api/v1/opt-outs": "opt-outs",
    "/api/v1/api-keys": "API keys",
    "/api/sms/smssync": "phones",
    "/api/sms/msync": "phones",
    "/api/sms/apps/": "providers",
}

SUMMARIES: dict[str, str] = {
    "api_v1_api_keys_list": "List API keys",
    "api_v1_api_keys_create": "Create an API key (its value is shown once)",
    "api_v1_api_keys_destroy": "Revoke an API key",
    "api_v1_apps_list": "List provider apps",
    "api_v1_apps_create": "Create a provider app (credentials are never returned)",
    "api_v1_apps_retrieve": "Get a provider app and its receive URL",
    "api_v1_apps_update": "Change a provider app",
    "api_v1_apps_partial_update": "Change a provider app's name, numbers, state or credentials",
    "api_v1_apps_destroy": "Delete a provider app",
    "api_v1_conversations_list": "List conversations, most recent first",
    "api_v1_conversations_messages_list": "List the messages of a conversation",
    "api_v1_devices_list": "List devices with their health and queue",
    "api_v1_devices_create": "Register a device (token, secret and app token shown once)",
    "api_v1_devices_retrieve": "Get a device",
    "api_v1_devices_partial_update": "Change a device's name, SIMs, limits or state",
    "api_v1_devices_destroy": "Delete a device",
    "api_v1_devices_rotate_credentials_create": "Issue new device credentials (old ones stop)",
    "api_v1_messages_list": "List messages, newest first, with filters",
    "api_v1_messages_create": "Send an SMS to one or more numbers",
    "api_v1_messages_retrieve": "Get a message and its status history",
    "api_v1_messages_cancel_create": "Cancel a message not yet handed to a phone or provider",
    "api_v1_opt_outs_list": "List opted-out numbers",
    "api_v1_opt_outs_create": "Opt a number out",
    "api_v1_opt_outs_retrieve": "Check whether a number is opted out",
    "api_v1_opt_outs_destroy": "Opt a number back in",
    "api_v1_routing_retrieve": "Get the routing policy (the environment's defaults until saved)",
    "api_v1_routing_update": "Change the routing policy (fields left out keep their values)",
    "api_v1_rules_list": "List automation rules in evaluation order",
    "api_v1_rules_create": "Create an automation rule",
    "api_v1_rules_retrieve": "Get an automation rule",
    "api_v1_rules_update": "Replace an automation rule",
    "api_v1_rules_partial_update": "Change an automation rule",
    "api_v1_rules_destroy": "Delete an automation rule",
    "api_v1_rules_hits_list": "List recent rule matches",
    "api_v1_rules_reorder_create": "Set the order rules are evaluated in",
    "api_v1_rules_test_create": "Dry-run the rules against a sample message",
    "api_v1_send_create": "Send an SMS (mysmsgate-compatible shape)",
    "api_v1_webhooks_list": "List webhook endpoints",
    "api_v1_webhooks_create": "Create a webhook endpoint (its signing secret is shown once)",
    "api_v1_webhooks_retrieve": "Get a webhook endpoint",
    "api_v1_webhooks_partial_update": "Change a webhook endpoint's URL, events or state",
    "api_v1_webhooks_destroy": "Delete a webhook endpoint",
    "api_v1_webhooks_deliveries_list": "List an endpoint's deliveries",
    "api_v1_webhooks_replay_create": "Deliver past events to an endpoint again",
    "api_v1_webhooks_rotate_secret_create": "Issue a new signing secret for an endpoint",
    "api_v1_webhooks_test_create": "Send a test event to an endpoint",
    "api_v1_webhooks_deliveries_retrieve": "Get a delivery with its attempts",
    "api_v1_webhooks_deliveries_retry_create": "Retry a failed delivery now",
    "v1_sms_send_create": "Send an SMS (SimGate-compatible shape)",
}


def _tag_for(path: str) -> str | None:
    matches = [prefix for prefix in TAG_BY_PREFIX if path.startswith(prefix)]
    return TAG_BY_PREFIX[max(matches, key=len)] if matches else None


def add_tags_and_summaries(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Tag each operation by its area and give it its summary from the table above."""
    for path, path_item in result.get("paths", {}).items():
        tag = _tag_for(path)
        for method, operation in path_item.items():
            if method not in METHODS:
                continue
            if tag is not None:
                operation["tags"] = [tag]
            summary = SUMMARIES.get(operation.get("operationId", ""))
            if summary and not operation.get("summary"):
                operation["summary"] = summary
    result["tags"] = [{"name": name, "description": text} for name, text in TAGS]
    return result
