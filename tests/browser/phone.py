"""A simulated Android phone speaking MSync to the test server (docs/phones/msync.md), so browser tests
drive the same endpoint and services a real phone would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from tests.factories import PairedDevice


class SimulatedPhone:
    def __init__(self, server_url: str, paired: PairedDevice) -> None:
        self.url = f"{server_url}/api/sms/msync"
        self.paired = paired

    def _call(self, action: str, **fields: Any) -> dict[str, Any]:
        response = requests.post(
            self.url,
            json={"action": action, "device_id": self.paired.device.pk, **fields},
            headers={"Authorization": f"Bearer {self.paired.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def receive(self, sender: str, body: str, sim_slot: int = 1) -> dict[str, Any]:
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        message = {"from": sender, "message": body, "timestamp": stamp, "sim_slot": sim_slot}
        return self._call("incoming", messages=[message])

    def poll(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self._call("outgoing", limit=limit)["messages"])

    def report(self, uuids: list[str], status: str) -> dict[str, Any]:
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        reports = [{"uuid": u, "status": status, "timestamp": stamp} for u in uuids]
        return self._call("delivery", reports=reports)
