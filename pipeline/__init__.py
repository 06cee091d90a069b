"""What an SMS causes once a door has parsed it: `inbound.receive` for messages that arrive,
`reports.apply_reports` for what phones and providers say about messages we sent.

Every door (SMSSync, MSync, the SMS Gateway for Android app, each cloud provider) only
authenticates, parses into plain records and shapes its answer; these services do the rest,
in steps you can read top to bottom (CONTRIBUTING.md, "The inbound pipeline").
"""
