"""Device life-cycle hooks (webhooks turns them into device.offline / device.online events).

Sent inside the transaction that flipped `Device.online`; kwargs: device, online (bool).
"""

from django.dispatch import Signal

device_health_changed = Signal()
