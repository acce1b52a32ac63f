"""Render API Gateway (REST, non-proxy) mapping templates locally with airspeed-ext.

Why: mapping templates are code that only runs inside API Gateway, so without an
emulator their injection-safety can only be checked after a deploy. This module
reproduces the parts of API Gateway's `$input`, `$util` and `$context` variables
our templates use, following the "Variables for data transformations" reference.

Known gaps between this emulator and API Gateway (templates should not rely on them):
- airspeed-ext evaluates `#if($ref)` as TRUE when `$ref` is null (Velocity says
  false) and treats "" as false (Velocity 1.7 says true). Compare explicitly
  instead, e.g. `#if("$!input.path('$.x')" != "")`, which means the same to both.
- `$input.json` on a path that does not exist renders as "" here. AWS does not
  document this case; templates must only call it on fields known to be present.
- JSONPath support is limited to `$`, `.name`, `['name']` and `[index]`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import airspeed

_MISSING = object()
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']*)'\]|\[(\d+)\]")


def _select(document: Any, path: str) -> Any:
    """Return the value at a (simple) JSONPath, or `_MISSING` if there is none."""
    if not path.startswith("$"):
        raise ValueError(f"JSONPath must start with '$': {path!r}")
    value, position = document, 1
    while position < len(path):
        segment = _SEGMENT.match(path, position)
        if segment is None:
            raise ValueError(f"Unsupported JSONPath: {path!r}")
        name, quoted_name, index = segment.groups()
        if index is not None:
            in_range = isinstance(value, list) and int(index) < len(value)
            value = value[int(index)] if in_range else _MISSING
        else:
            key = name if name is not None else quoted_name
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            return _MISSING
        position = segment.end()
    return value


class _Input:
    """API Gateway's `$input`: the raw payload plus JSONPath accessors."""

    def __init__(self, body: str, params: dict[str, dict[str, str]]):
        self.body = body
        self._params = params

    def _document(self) -> Any:
        # API Gateway treats an empty payload as an empty object.
        return json.loads(self.body) if self.body.strip() else {}

    def path(self, jsonpath: str) -> Any:
        """The value at `jsonpath` as an object (None when absent)."""
        value = _select(self._document(), jsonpath)
        return None if value is _MISSING else value

    def json(self, jsonpath: str) -> str:
        """The value at `jsonpath` serialised as JSON text ("" when absent)."""
        value = _select(self._document(), jsonpath)
        if value is _MISSING:
            return ""
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def params(self, name: str | None = None) -> Any:
        """All parameters by location, or one by name (path, then query, then header)."""
        if name is None:
            return self._params
        for location in ("path", "querystring", "header"):
            if name in self._params.get(location, {}):
                return self._params[location][name]
        return None


def _java_escape(code_unit: int) -> str:
    return f"\\u{code_unit:04X}"


class _Util:
    """API Gateway's `$util` (the subset our templates and tests use)."""

    _JS_ESCAPES = {
        "'": "\\'", '"': '\\"', "\\": "\\\\", "/": "\\/",
        "\b": "\\b", "\n": "\\n", "\t": "\\t", "\f": "\\f", "\r": "\\r",
    }

    def escapeJavaScript(self, text: Any) -> str:
        """JavaScript string escaping as in Apache Commons Lang (`'` becomes `\\'`).

        Non-ASCII and control characters become \\uXXXX per UTF-16 code unit, as Java does.
        """
        escaped = []
        for char in str(text):
            if char in self._JS_ESCAPES:
                escaped.append(self._JS_ESCAPES[char])
            elif ord(char) < 0x20 or ord(char) > 0x7F:
                utf16 = char.encode("utf-16-be")
                escaped.extend(
                    _java_escape(int.from_bytes(utf16[i : i + 2], "big"))
                    for i in range(0, len(utf16), 2)
                )
            else:
                escaped.append(char)
        return "".join(escaped)

    def parseJson(self, text: str) -> Any:
        return json.loads(text)


def render(
    template: str,
    body: str,
    *,
    params: dict[str, dict[str, str]] | None = None,
    request_id: str = "00000000-0000-0000-0000-000000000000",
) -> str:
    """Render `template` against the raw payload `body` as API Gateway would."""
    namespace = {
        "input": _Input(body, params or {"path": {}, "querystring": {}, "header": {}}),
        "util": _Util(),
        "context": {"requestId": request_id},
    }
    return airspeed.Template(template).merge(namespace)
