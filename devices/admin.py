from django.contrib import admin

from devices.models import Device, Sim


class SimInline(admin.TabularInline):
    model = Sim
    extra = 0


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "enabled", "online", "last_seen_at", "battery_level"]
    list_filter = ["enabled", "online"]
    exclude = ["token_hash", "smssync_secret_hash"]
    inlines = [SimInline]
