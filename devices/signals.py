"""The plug-in point of devices: `device_health_changed`, sent inside the transaction that
flipped `Device.online` (a phone's check-in, the heartbeat sweep); kwargs: device, online.

A signal because devices sits below every app that cares (webhooks turns it into
device.online / device.offline events) and must not import them.
"""

from django.dispatch import Signal

device_health_changed = Signal()
