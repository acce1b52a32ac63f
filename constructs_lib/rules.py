"""Value rules both validators use: settings (what users type) and construct props (what code wires).

One copy of each AWS name pattern, so the two cannot drift apart. Nothing here imports cdktf: `main.py` loads the
settings, and reports a bad file, before jsii starts (on the Node it pins).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], "str | None"]
"""Returns what is wrong with a value (`must be > 0`), or None when it is allowed."""


def matches(pattern: str, meaning: str) -> Check:
    compiled = re.compile(pattern)
    return lambda value: None if isinstance(value, str) and compiled.fullmatch(value) else f"must be {meaning}"


def cidr(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return "must be a CIDR block such as 10.0.0.0/8 (host bits zero)"
    return None


# Rules settings and constructs word alike.
STAGE_NAME = matches(r"[A-Za-z0-9_]{1,128}", "1-128 letters, digits or underscores")
VPC_ENDPOINT_ID = matches(r"vpce-[0-9a-f]{8,17}", "a VPC endpoint id such as vpce-0123456789abcdef0")
METHOD_PATH = matches(
    r"/[A-Za-z0-9/_{}.-]*/(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|\*)", "a resource path and method, e.g. /keys/POST"
)
DNS_NAME = matches(
    r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", "a lowercase DNS name such as keys.example.com"
)

# Patterns whose messages differ: a settings message names the setting's meaning, a construct's the prop's form.
FUNCTION_NAME_PATTERN = r"[A-Za-z0-9_-]{1,64}"
ROLE_NAME_PATTERN = r"[\w+=,.@-]{1,64}"
LOG_GROUP_PATTERN = r"[\w./#-]{1,512}"
BUCKET_PATTERN = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
TABLE_NAME_PATTERN = r"[A-Za-z0-9_.-]{3,255}"
ZONE_ID_PATTERN = r"Z[A-Z0-9]{1,31}"
BASE_PATH_PATTERN = r"[A-Za-z0-9._-]{1,128}"
