from django.contrib import admin

from messaging.models import (
    Conversation,
    IdempotencyRecord,
    InboundRequest,
    Message,
    MessageEvent,
    OptOut,
    ProviderApp,
)


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    extra = 0
    readonly_fields = ["status", "at", "detail", "applied"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "direction", "status", "from_number", "to_number", "device", "created_at"]
    list_filter = ["direction", "status", "source"]
    search_fields = ["id", "from_number", "to_number", "body"]
    raw_id_fields = ["conversation", "device", "app"]
    inlines = [MessageEventInline]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["phone", "device", "sim_slot", "app", "unread", "updated_at"]
    search_fields = ["phone"]
    raw_id_fields = ["device", "app", "last_message"]


@admin.register(OptOut)
class OptOutAdmin(admin.ModelAdmin):
    list_display = ["phone", "at", "source"]
    search_fields = ["phone"]


@admin.register(ProviderApp)
class ProviderAppAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "enabled", "created_at"]
    exclude = ["credentials_encrypted"]


@admin.register(InboundRequest)
class InboundRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "source", "method", "path", "outcome", "status_code", "received_at"]
    list_filter = ["source", "outcome"]


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["principal", "key", "status_code", "created_at"]
