"""A client's request to the emulator's API Gateway endpoint, over a real TCP connection.

`source_ip` binds the client socket to another loopback address (any of 127.0.0.0/8 on Linux), so a test can
be a caller the resource policy refuses without leaving the machine.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    """Lower-cased names."""
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


def user_request_url(endpoint: str, api_id: str, stage: str, path: str = "/keys") -> str:
    return f"{endpoint}/restapis/{api_id}/{stage}/_user_request_{path}"


def send(
    url: str,
    body: Any = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    source_ip: str | None = None,
    timeout: float = 60,
) -> Answer:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=timeout, source_address=(source_ip, 0) if source_ip else None
    )
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), data, all_headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
    finally:
        connection.close()


def burst(url: str, body: Any, headers: dict[str, str], count: int) -> tuple[list[int], float]:
    """`count` requests back to back: their statuses in order and the seconds from first send to last answer."""
    started = time.monotonic()
    statuses = [send(url, body, headers=headers).status for _ in range(count)]
    return statuses, time.monotonic() - started
