from typing import Any

from django import forms
from django.contrib import admin

from automation.models import Rule, RuleHit
from automation.rules import RuleInvalid, clean_actions, clean_match


class RuleForm(forms.ModelForm):
    """The admin validates conditions and actions exactly as the API does."""

    class Meta:
        model = Rule
        fields = ["name", "enabled", "priority", "match", "actions", "stop"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            if "match" in data:
                data["match"] = clean_match(data["match"])
            if "actions" in data:
                data["actions"] = clean_actions(data["actions"])
        except RuleInvalid as exc:
            raise forms.ValidationError(exc.message) from None
        return data


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["name", "priority", "enabled", "stop", "updated_at", "id"]
    list_filter = ["enabled"]
    search_fields = ["name", "id"]


@admin.register(RuleHit)
class RuleHitAdmin(admin.ModelAdmin):
    list_display = ["id", "rule_name", "builtin", "phone", "suppressed", "created_at"]
    list_filter = ["builtin", "suppressed"]
    search_fields = ["phone", "rule_name", "message__id"]
    raw_id_fields = ["rule", "message"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
