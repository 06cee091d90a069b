"""The inbox, a thread, its send box, and the fragments the live updates fetch."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard import queries, services
from dashboard.access import staff_required
from dashboard.views.common import paginate, query_without_page, render_page
from messaging import services as messaging
from messaging.models import Conversation
from messaging.routing import other_line_available, reply_app_id
from smsgate.errors import DomainError
from smsgate.phones import can_reply_to


def _conversation_or_404(conversation_id: str) -> Conversation:
    conversation = queries.get_conversation(conversation_id)
    if conversation is None:
        raise Http404
    return conversation


@staff_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")[:100]
    device_id = request.GET.get("device", "")[:40]
    page = paginate(request, queries.list_conversations(search=search, device_id=device_id))
    context = {
        "page": page,
        "search": search,
        "device_id": device_id,
        "devices": queries.devices_for_filter(),
        "filtered": bool(search or device_id),
        "querystring": query_without_page(request),
    }
    return render_page(request, "dashboard/inbox.html", context, section="inbox")


@staff_required
@require_POST
def compose(request: HttpRequest) -> HttpResponse:
    """A message to a new (or any) number; lands in that number's thread."""
    to, body = request.POST.get("to", ""), request.POST.get("body", "")
    try:
        message = messaging.send_message(to=to, body=body, source="dashboard")
    except DomainError as exc:
        page = paginate(request, queries.list_conversations())
        context = {
            "page": page,
            "devices": queries.devices_for_filter(),
            "compose_error": exc,
            "compose_to": to,
            "compose_body": body,
        }
        return render_page(
            request, "dashboard/inbox.html", context, section="inbox", status=exc.status_code
        )
    return redirect("dashboard:thread", conversation_id=message.conversation_id)


@staff_required
@require_GET
def thread(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = _conversation_or_404(conversation_id)
    if conversation.unread:
        services.open_conversation(conversation_id=conversation.pk)
        conversation.unread = 0
    return _render_thread(request, conversation)


def _render_thread(
    request: HttpRequest,
    conversation: Conversation,
    *,
    error: DomainError | None = None,
    draft: str = "",
) -> HttpResponse:
    context = {
        "conversation": conversation,
        "messages_": queries.thread_messages(conversation),
        "limit": queries.THREAD_LIMIT,
        "send_error": error,
        "draft": draft,
        "can_reply": can_reply_to(conversation.phone),
        "receive_only": _receive_only_line(conversation),
        # Said before the user types: a reply to an opted-out number could only be refused.
        "opted_out_at": getattr(conversation, "opted_out_at", None),
    }
    status = error.status_code if error else 200
    return render_page(request, "dashboard/thread.html", context, section="inbox", status=status)


def _receive_only_line(conversation: Conversation) -> dict[str, object] | None:
    """When the thread's line is an app that only receives: whether a phone replies instead
    (else the page offers no send box, as every reply could only fail)."""
    app = conversation.app if conversation.app_id and not conversation.device_id else None
    if app is None or app.can_send:
        return None
    return {"app": app, "other_line": other_line_available()}


@staff_required
@require_POST
def send(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = _conversation_or_404(conversation_id)
    body = request.POST.get("body", "")
    try:
        if not conversation.device_id:
            # Refuses when the thread's app only receives and no other line can send.
            reply_app_id(conversation.app_id)
        messaging.send_message(to=conversation.phone, body=body, source="dashboard")
    except DomainError as exc:
        return _render_thread(request, conversation, error=exc, draft=body)
    return redirect("dashboard:thread", conversation_id=conversation.pk)


@staff_required
@require_POST
def cancel(request: HttpRequest, conversation_id: str, message_id: str) -> HttpResponse:
    """Cancel an outbound message that no phone or provider has taken yet."""
    message = queries.get_thread_message(conversation_id, message_id)
    if message is None:
        raise Http404
    try:
        messaging.cancel_message(message_id=message.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard:thread", conversation_id=conversation_id)


@staff_required
@require_POST
def mark_read(request: HttpRequest, conversation_id: str) -> HttpResponse:
    services.open_conversation(conversation_id=_conversation_or_404(conversation_id).pk)
    return HttpResponse(status=204)


# --- fragments for live updates ------------------------------------------------------------


@staff_required
@require_GET
def conversation_row(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = _conversation_or_404(conversation_id)
    return render(request, "dashboard/_conversation_row.html", {"c": conversation})


@staff_required
@require_GET
def message_bubble(request: HttpRequest, conversation_id: str, message_id: str) -> HttpResponse:
    message = queries.get_thread_message(conversation_id, message_id)
    if message is None:
        raise Http404
    return render(request, "dashboard/_message.html", {"m": message})


@staff_required
@require_GET
def unread(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"unread": queries.unread_total()})
