"""The SMS Gateway for Android app's door (docs/phones/sms-gateway-app.md): its wire shapes
(`wire.py`), what it changes (`services.py`), the mobile API (`views.py`), the webhooks it
sends back (`hooks.py`) and its Server-Sent Events stream (`stream.py`)."""
