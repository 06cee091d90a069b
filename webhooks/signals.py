"""The plug-in point of webhooks, so that it never imports automation (which is above it).

`reply_suppressed` is sent, inside the transaction, when the loop guard holds back a reply a
chat receiver answered with; automation records it in its log (automation/suppressed.py).
kwargs: phone, message (the inbound Message or None), name, text, webhook_id, delivery_id.
"""

from django.dispatch import Signal

reply_suppressed = Signal()
