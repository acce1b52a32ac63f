"""Render API Gateway (REST, non-proxy) mapping templates locally with airspeed-ext.

Why: mapping templates are code that only runs inside API Gateway. The emulator's data plane
renders integration request and response templates with this module, and the contract tests
check the templates' injection-safety with the same renderer, so the two cannot drift apart.
It reproduces API Gateway's `$context`, `$input`, `$stageVariables` and `$util` variables,
following the "Variables for data transformations for API Gateway" reference.

`render` serves both directions: for an integration request `body` is the client's payload;
for an integration response it is the backend's, e.g. a Lambda's JSON result or its
`{"errorMessage": ...}` document. A template error raises `airspeed.TemplateError` (a ValueError
from `$input` or `$util` arrives wrapped in it); API Gateway answers 500 then, which is the caller's job.

Known gaps between this emulator and API Gateway (templates should not rely on them):
- airspeed-ext evaluates `#if($ref)` as TRUE when `$ref` is null (Velocity says
  false) and treats "" as false (Velocity 1.7 says true). Compare explicitly
  instead, e.g. `#if("$!input.path('$.x')" != "")`, which means the same to both.
  `$context`, `$stageVariables`, `$input.params()` and `$input.params('x')` give ""
  (not null) for what is absent, so `#if` on them is false, as in API Gateway.
- `$input.json` on a path that does not exist renders as "" here. AWS does not
  document this case; templates must only call it on fields known to be present.
- JSONPath support is limited to `$`, `.name`, `['name']` and `[index]`.

Deviations and choices where the reference is silent:
- Absent `$context`/`$stageVariables` keys render "" as in API Gateway; the maps offer the Java
  Map methods `get`, `keySet`, `containsKey`, `size` and `isEmpty`, and render as Java's `{k=v}`.
  An absent key named like one of those methods (or a Python dict method) is not "".
- `$context` holds whatever the caller supplies (plus `requestId`); nothing is derived here.
  `$context.authorizer` values that are numbers or booleans become strings ("1", "true"), as the
  reference says for a Lambda authorizer's context. `$context.responseOverride` is not supported:
  `render` returns only the body.
- `$input.params('x')` searches path, query string, then header, as documented; the header
  match ignores case (HTTP header names are case-insensitive; an exact match wins), while
  `$input.params().header.get('X')` is an exact, case-sensitive lookup as on a Java Map.
- `$util.urlEncode`/`urlDecode` follow Java's URLEncoder/URLDecoder with UTF-8
  (application/x-www-form-urlencoded: space is `+`, only `A-Za-z0-9.-*_` stay literal); a
  malformed `%` escape raises ValueError as Java's IllegalArgumentException would.
- `$util.base64Encode`/`base64Decode` use UTF-8 text and the standard alphabet; decoding accepts
  missing padding (as java.util.Base64 does), rejects other characters, and replaces invalid UTF-8.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import airspeed

DEFAULT_REQUEST_ID = "00000000-0000-0000-0000-000000000000"
PARAM_LOCATIONS = ("path", "querystring", "header")

_MISSING = object()
_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']*)'\]|\[(\d+)\]")
_BAD_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class _VtlMap(dict):
    """A map whose absent keys read as "", as API Gateway renders unset variables (and `#if` sees false)."""

    def __missing__(self, key: Any) -> Any:
        # None makes airspeed fall back to attributes, so `$map.get('k')` and `$map.keySet()` still work.
        return None if isinstance(key, str) and hasattr(type(self), key) else ""

    def __str__(self) -> str:
        return "{" + ", ".join(f"{key}={value}" for key, value in self.items()) + "}"

    # Java Map methods templates call (airspeed only adds its own to plain dicts).
    def keySet(self) -> list[Any]:
        return list(self.keys())

    def containsKey(self, key: Any) -> bool:
        return key in self

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self


def _to_vtl(value: Any, *, stringify: bool = False) -> Any:
    """Nested mappings as `_VtlMap`s; with `stringify`, numbers and booleans as Java would print them."""
    if isinstance(value, Mapping):
        return _VtlMap({key: _to_vtl(item, stringify=stringify) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return [_to_vtl(item, stringify=stringify) for item in value]
    if stringify and isinstance(value, bool | int | float):
        return json.dumps(value)
    return value


def _context_map(context: Mapping[str, Any] | None, request_id: str) -> _VtlMap:
    converted = _VtlMap({key: _to_vtl(value, stringify=key == "authorizer") for key, value in (context or {}).items()})
    converted.setdefault("requestId", request_id)
    return converted


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
    """API Gateway's `$input`: the raw payload plus JSONPath accessors and the method request's parameters."""

    def __init__(self, body: str, params: Mapping[str, Mapping[str, str]] | None):
        self.body = body
        given = params or {}
        self._params = _VtlMap({location: _VtlMap(given.get(location) or {}) for location in PARAM_LOCATIONS})

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
        """All parameters by location, or one by name (path, then query, then header; "" when absent)."""
        if name is None:
            return self._params
        for location in ("path", "querystring"):
            if name in self._params[location]:
                return self._params[location][name]
        headers = self._params["header"]
        if name in headers:
            return headers[name]
        folded = name.casefold()
        return next((value for key, value in headers.items() if key.casefold() == folded), "")


def _java_escape(code_unit: int) -> str:
    return f"\\u{code_unit:04X}"


class _Util:
    """API Gateway's `$util`."""

    _JS_ESCAPES = {
        "'": "\\'",
        '"': '\\"',
        "\\": "\\\\",
        "/": "\\/",
        "\b": "\\b",
        "\n": "\\n",
        "\t": "\\t",
        "\f": "\\f",
        "\r": "\\r",
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
                escaped.extend(_java_escape(int.from_bytes(utf16[i : i + 2], "big")) for i in range(0, len(utf16), 2))
            else:
                escaped.append(char)
        return "".join(escaped)

    def parseJson(self, text: str) -> Any:
        """The object a JSON text denotes, so a template can navigate it."""
        return json.loads(text)

    def urlEncode(self, text: Any) -> str:
        """application/x-www-form-urlencoded as Java's URLEncoder with UTF-8 (Python keeps `~`; Java does not)."""
        return quote_plus(str(text), safe="*", encoding="utf-8", errors="replace").replace("~", "%7E")

    def urlDecode(self, text: Any) -> str:
        """The inverse of `urlEncode`, as Java's URLDecoder with UTF-8, which rejects a malformed `%` escape."""
        text = str(text)
        bad = _BAD_PERCENT_ESCAPE.search(text)
        if bad is not None:
            raise ValueError(f"Malformed %-escape at index {bad.start()} in {text!r}")
        return unquote_plus(text, encoding="utf-8", errors="replace")

    def base64Encode(self, text: Any) -> str:
        """Base64 (standard alphabet, padded) of the text's UTF-8 bytes."""
        return base64.b64encode(str(text).encode("utf-8")).decode("ascii")

    def base64Decode(self, text: Any) -> str:
        """The UTF-8 text behind a Base64 string; padding is optional, other stray characters raise."""
        text = str(text)
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode("utf-8", errors="replace")


def render(
    template: str,
    body: str,
    *,
    context: Mapping[str, Any] | None = None,
    params: Mapping[str, Mapping[str, str]] | None = None,
    stage_variables: Mapping[str, str] | None = None,
    request_id: str = DEFAULT_REQUEST_ID,
) -> str:
    """Render `template` against the raw payload `body` as API Gateway would.

    `context` is `$context` (nested mappings for `identity`, `authorizer`, ...); `request_id` fills its
    `requestId` when absent. `params` maps `path`, `querystring` and `header` to the method request's
    parameters; `stage_variables` is `$stageVariables`.
    """
    namespace = {
        "input": _Input(body, params),
        "util": _Util(),
        "context": _context_map(context, request_id),
        "stageVariables": _to_vtl(dict(stage_variables or {})),
    }
    return airspeed.Template(template).merge(namespace)
