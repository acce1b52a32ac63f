"""Tests for the POST /keys API contract: injection-safe request mapping, error
selection that maps every Lambda error to exactly one status, and the request model.

Mapping templates are rendered with local_aws.apigw.vtl, the local emulation of
API Gateway's Velocity variables that the emulator's API Gateway data plane uses too.
"""

import json
import re

import pytest
from jsonschema import Draft4Validator

from constructs_lib import api_contract
from constructs_lib.api_contract import (
    ERROR_RESPONSES,
    GENERIC_ERROR_MESSAGE,
    REQUEST_MODEL_SCHEMA,
    REQUEST_TEMPLATE,
    SUCCESS_RESPONSE_TEMPLATE,
    SUCCESS_STATUS,
    ErrorResponse,
    status_for_error,
)
from local_aws.apigw.vtl import render

# The template this contract replaces; kept to prove the replacement matters.
ORIGINAL_TEMPLATE = (
    "#set($inputRoot = $input.path('$'))\n"
    '{ "Account": "$inputRoot.account", "Region": "$inputRoot.region", "KeyUsage": "$inputRoot.key_usage", '
    '"KeyAlias": "$inputRoot.key_alias", "KeyDescription": "$inputRoot.key_description" }'
)

INJECTION = '", "KeyUsage": "SIGN_VERIFY'

VALID_BODY = {
    "account": "123456789012",
    "region": "eu-west-1",
    "key_usage": "ENCRYPT_DECRYPT",
    "key_alias": "alias/payments",
    "key_description": "Key for payments",
}
# Rendered without a $context, as these tests do unless they say otherwise: the caller is unknown ("").
NO_CALLER = {"ApiKeyId": "", "TenantId": ""}
EXPECTED_EVENT = {
    "Account": "123456789012",
    "Region": "eu-west-1",
    "KeyUsage": "ENCRYPT_DECRYPT",
    "KeyAlias": "alias/payments",
    "KeyDescription": "Key for payments",
    "Caller": NO_CALLER,
}


def _reject_duplicate_keys(pairs):
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys injected: {keys}"
    return dict(pairs)


def strict_json(text):
    """Parse JSON, failing on duplicate keys, which json.loads would silently merge."""
    return json.loads(text, object_pairs_hook=_reject_duplicate_keys)


def render_request(body):
    return strict_json(render(REQUEST_TEMPLATE, json.dumps(body)))


def render_lambda_error(template, message):
    payload = {"errorMessage": message, "errorType": "Exception", "stackTrace": ["  File x"]}
    return strict_json(render(template, json.dumps(payload)))


def error_response(status_code):
    return next(r for r in ERROR_RESPONSES if r.status_code == status_code)


# --- request mapping ----------------------------------------------------------

ADVERSARIAL_DESCRIPTIONS = {
    "plain": "Key for payments",
    "double_quotes": 'the "prod" key',
    "single_quotes": "Bob's key isn't shared",
    "backslashes": 'C:\\keys\\ and \\" and a trailing \\',
    "newlines": "line1\nline2\r\nline3",
    "tabs_and_control_chars": "a\tb\x00c\x1f\x7f",
    "unicode_and_emoji": "clé 🔑 鍵 \u2028 \ufeff",
    "dollar_and_hash": "$100 #1 ${x} $!y #{end} $",
    "vtl_directives": "#set($inputRoot = 'x')$util.escapeJavaScript('a') $input.body "
    "#if(true)yes#end #foreach($i in [1..3])$i#end $context.requestId",
    "unbalanced_vtl": "#end #else ## comment #* unterminated",
    "json_field_injection": INJECTION,
    "json_object_breakout": '"}, "KeyUsage": "SIGN_VERIFY", "x": {"y": "',
    "escaped_quote_injection": '\\", "KeyUsage": "SIGN_VERIFY',
    "literal_unicode_escape": "\\u0022, \\u0022KeyUsage\\u0022: \\u0022SIGN_VERIFY",
    "max_length_8192": ("\"'\\\n$#" * 1366)[:8192],
    "empty": "",
    "whitespace_only": "   ",
}


@pytest.mark.parametrize("description", ADVERSARIAL_DESCRIPTIONS.values(), ids=ADVERSARIAL_DESCRIPTIONS.keys())
def test_request_template_passes_description_through_verbatim(description):
    event = render_request({**VALID_BODY, "key_description": description})

    assert event == {**EXPECTED_EVENT, "KeyDescription": description}


def test_request_template_handles_body_with_extra_whitespace():
    body = (
        ' \n{\t"account" :  "123456789012",\n\n "region":"eu-west-1" ,'
        '"key_usage"\n:\n"ENCRYPT_DECRYPT", "key_alias": "alias/payments",\r\n'
        '  "key_description":   "Key for payments"   }\n  '
    )

    assert strict_json(render(REQUEST_TEMPLATE, body)) == EXPECTED_EVENT


def test_request_template_includes_key_spec_when_given():
    event = render_request({**VALID_BODY, "key_spec": "RSA_2048"})

    assert event == {**EXPECTED_EVENT, "KeySpec": "RSA_2048"}


def test_request_template_omits_key_spec_when_absent():
    assert "KeySpec" not in render_request(VALID_BODY)


def test_request_template_maps_every_model_property():
    for name in REQUEST_MODEL_SCHEMA["properties"]:
        assert f"$input.json('$.{name}')" in REQUEST_TEMPLATE


# --- caller identity ------------------------------------------------------------

# What API Gateway puts in $context: in key mode the API key that passed the usage plan; in authorizer mode
# also the tenant the token authorizer returned in its context (and the key it supplied).
KEY_MODE_CONTEXT = {"identity": {"apiKeyId": "k1a2b3c4d5", "sourceIp": "203.0.113.7"}, "authorizer": {}}
AUTHORIZER_MODE_CONTEXT = {
    "identity": {"apiKeyId": "t9s8r7q6p5", "sourceIp": "203.0.113.7"},
    "authorizer": {"tenant_id": "acme", "api_key_id": "t9s8r7q6p5", "principalId": "acme"},
}
FORGED_CALLERS = {
    "exact_name": {"Caller": {"ApiKeyId": "operator-key", "TenantId": "globex"}},
    "lowercase_name": {"caller": {"ApiKeyId": "operator-key", "TenantId": "globex"}},
    "flat_fields": {"ApiKeyId": "operator-key", "TenantId": "globex"},
    "snake_case": {"api_key_id": "operator-key", "tenant_id": "globex"},
}


@pytest.mark.parametrize(
    ("context", "caller"),
    [
        (KEY_MODE_CONTEXT, {"ApiKeyId": "k1a2b3c4d5", "TenantId": ""}),
        (AUTHORIZER_MODE_CONTEXT, {"ApiKeyId": "t9s8r7q6p5", "TenantId": "acme"}),
        ({"identity": {"sourceIp": "203.0.113.7"}}, NO_CALLER),
    ],
    ids=["key_mode", "authorizer_mode", "no_identity"],
)
def test_caller_comes_from_the_gateway_context(context, caller):
    event = strict_json(render(REQUEST_TEMPLATE, json.dumps(VALID_BODY), context=context))

    assert event == {**EXPECTED_EVENT, "Caller": caller}


@pytest.mark.parametrize("forged", FORGED_CALLERS.values(), ids=FORGED_CALLERS.keys())
def test_request_model_refuses_caller_fields_in_the_body(forged):
    assert not Draft4Validator(REQUEST_MODEL_SCHEMA).is_valid({**VALID_BODY, **forged})


@pytest.mark.parametrize("forged", FORGED_CALLERS.values(), ids=FORGED_CALLERS.keys())
def test_template_ignores_caller_fields_even_past_the_model(forged):
    # Defence in depth: were the validator off, the template still copies only named fields.
    body = json.dumps({**VALID_BODY, **forged})

    for context in (KEY_MODE_CONTEXT, AUTHORIZER_MODE_CONTEXT):
        event = strict_json(render(REQUEST_TEMPLATE, body, context=context))
        assert event["Caller"] == {
            "ApiKeyId": context["identity"]["apiKeyId"],
            "TenantId": context["authorizer"].get("tenant_id", ""),
        }
        assert set(event) == set(EXPECTED_EVENT)


@pytest.mark.parametrize("field", ["key_description", "key_alias"])
def test_caller_cannot_be_injected_through_a_string_field(field):
    injected = '", "Caller": {"ApiKeyId": "operator-key", "TenantId": "globex"}, "x": "'

    event = strict_json(render(REQUEST_TEMPLATE, json.dumps({**VALID_BODY, field: injected}), context=KEY_MODE_CONTEXT))

    assert event["Caller"] == {"ApiKeyId": "k1a2b3c4d5", "TenantId": ""}
    assert event[{"key_description": "KeyDescription", "key_alias": "KeyAlias"}[field]] == injected


def test_original_template_lets_description_override_key_usage():
    rendered = render(ORIGINAL_TEMPLATE, json.dumps({**VALID_BODY, "key_description": INJECTION}))

    # json.loads keeps the last duplicate key, as the Lambda's parser does.
    assert json.loads(rendered)["KeyUsage"] == "SIGN_VERIFY"


def test_escape_javascript_alternative_breaks_json_on_single_quote():
    template = '{"KeyDescription": "$util.escapeJavaScript($input.path(\'$.key_description\'))"}'
    rendered = render(template, json.dumps({"key_description": "Bob's key"}))

    with pytest.raises(json.JSONDecodeError):
        json.loads(rendered)


# --- error selection ------------------------------------------------------------

ERROR_MESSAGES = {
    "bad_request": ("BadRequest: KeyAlias: must match ^(alias/)?[A-Za-z0-9/_-]+$", "400"),
    "bad_request_empty_detail": ("BadRequest: ", "400"),
    "bad_request_multiline": ("BadRequest: first problem\nsecond problem", "400"),
    "forbidden": ("Forbidden: account 123456789012 is not allowed", "403"),
    "forbidden_multiline_crlf": ("Forbidden: account\r\n123456789012", "403"),
    "conflict": ("Conflict: alias alias/x already exists (key 1234)", "409"),
    "conflict_multiline": ("Conflict: alias alias/x\nalready exists", "409"),
    "too_many_requests": ("TooManyRequests: AWS is throttling key creation in eu-west-1; retry later", "429"),
    "service_unavailable": ("ServiceUnavailable: the KMS keys quota of KMS is reached in account 1", "503"),
    "throttle_without_space": ("TooManyRequests:x", "500"),
    "internal_error": ("InternalError: key creation failed (request abc)", "500"),
    "internal_error_multiline": ("InternalError: failed\nTraceback (most recent call last):", "500"),
    "timeout": ("Task timed out after 3.00 seconds", "500"),
    "python_exception": ("'NoneType' object is not subscriptable", "500"),
    "aws_error_text": (
        "An error occurred (AccessDeniedException) when calling the CreateKey operation: "
        "User: arn:aws:sts::123456789012:assumed-role/x is not authorized",
        "500",
    ),
    "prefix_later_in_message": ("Oops BadRequest: x", "500"),
    "prefix_on_second_line": ("Error\nConflict: x", "500"),
    "prefix_after_newline": ("\nForbidden: x", "500"),
    "prefix_after_space": (" BadRequest: x", "500"),
    "lowercase_prefix": ("badrequest: x", "500"),
    "prefix_without_space": ("BadRequest:x", "500"),
    "bare_prefix": ("Conflict", "500"),
}


@pytest.mark.parametrize(("message", "status"), ERROR_MESSAGES.values(), ids=ERROR_MESSAGES.keys())
def test_error_message_selects_expected_status(message, status):
    assert status_for_error(message) == status


@pytest.mark.parametrize("message", [m for m, _ in ERROR_MESSAGES.values()], ids=ERROR_MESSAGES.keys())
def test_error_message_matches_exactly_one_pattern(message):
    matches = [r for r in ERROR_RESPONSES if re.fullmatch(r.selection_pattern, message)]

    assert len(matches) == 1


@pytest.mark.parametrize(
    "message", [m for m, _ in ERROR_MESSAGES.values()] + [""], ids=[*ERROR_MESSAGES.keys(), "empty"]
)
def test_patterns_select_the_same_responses_under_partial_matching(message):
    full = [r.status_code for r in ERROR_RESPONSES if re.fullmatch(r.selection_pattern, message)]
    partial = [r.status_code for r in ERROR_RESPONSES if re.search(r.selection_pattern, message)]

    assert partial == full


def test_successful_invocation_selects_default_response():
    # API Gateway also tests the patterns against a success's empty errorMessage.
    assert status_for_error("") == SUCCESS_STATUS


def test_status_for_error_rejects_overlapping_patterns(monkeypatch):
    overlapping = ErrorResponse("418", r"(?s)^BadRequest: .*", "{}", "overlaps 400")
    monkeypatch.setattr(api_contract, "ERROR_RESPONSES", (*ERROR_RESPONSES, overlapping))

    with pytest.raises(ValueError, match="Ambiguous"):
        status_for_error("BadRequest: x")


def test_only_the_429_carries_retry_after_as_a_static_value():
    headers = {r.status_code: dict(r.headers) for r in ERROR_RESPONSES if r.headers}

    assert headers == {"429": {"Retry-After": f"'{api_contract.RETRY_AFTER_SECONDS}'"}}


def test_error_responses_cover_each_status_once():
    assert sorted(r.status_code for r in ERROR_RESPONSES) == ["400", "403", "409", "429", "500", "503"]


# --- response templates ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "prefix"),
    [
        ("400", "BadRequest"),
        ("403", "Forbidden"),
        ("409", "Conflict"),
        ("429", "TooManyRequests"),
        ("503", "ServiceUnavailable"),
    ],
)
def test_client_error_template_returns_lambda_message_as_json(status_code, prefix):
    message = f'{prefix}: "quoted" it\'s \\ $x #set($a = 1)\nnext line'

    body = render_lambda_error(error_response(status_code).response_template, message)

    assert body == {"message": message}


def test_internal_error_template_hides_lambda_error_text():
    template = error_response("500").response_template

    body = render_lambda_error(template, "InternalError: arn:aws:kms:eu-west-1:123456789012:key/1")

    assert "$input" not in template
    assert body == {"message": GENERIC_ERROR_MESSAGE}


def test_success_template_returns_lambda_result_unchanged():
    result = {
        "KeyId": "1234abcd",
        "KeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd",
        "Alias": "alias/payments",
        "Description": 'clé "x" 🔑\n',
    }

    assert strict_json(render(SUCCESS_RESPONSE_TEMPLATE, json.dumps(result))) == result


# --- request model ---------------------------------------------------------------

VALID_MODEL_BODIES = {
    "required_fields_only": VALID_BODY,
    "with_key_spec": {**VALID_BODY, "key_spec": "ECC_NIST_P256"},
    "alias_without_prefix": {**VALID_BODY, "key_alias": "team/payments_v2-blue"},
    "gov_region": {**VALID_BODY, "region": "us-gov-west-1"},
    "max_length_description": {**VALID_BODY, "key_description": "x" * 8192},
    "empty_description": {**VALID_BODY, "key_description": ""},
    "adversarial_description": {**VALID_BODY, "key_description": INJECTION},
}

INVALID_MODEL_BODIES = {
    **{f"missing_{field}": {k: v for k, v in VALID_BODY.items() if k != field} for field in VALID_BODY},
    "extra_property": {**VALID_BODY, "KeyUsage": "SIGN_VERIFY"},
    "short_account": {**VALID_BODY, "account": "12345678901"},
    "account_with_newline": {**VALID_BODY, "account": "123456789012\n"},
    "numeric_account": {**VALID_BODY, "account": 123456789012},
    "uppercase_region": {**VALID_BODY, "region": "EU-WEST-1"},
    "region_without_number": {**VALID_BODY, "region": "eu-west"},
    "unknown_key_usage": {**VALID_BODY, "key_usage": "ENCRYPT"},
    "alias_with_space": {**VALID_BODY, "key_alias": "alias/my key"},
    "alias_with_quote": {**VALID_BODY, "key_alias": 'alias/x", "KeyUsage": "SIGN_VERIFY'},
    "alias_too_long": {**VALID_BODY, "key_alias": "alias/" + "a" * 251},
    "description_too_long": {**VALID_BODY, "key_description": "x" * 8193},
    "null_description": {**VALID_BODY, "key_description": None},
    "lowercase_key_spec": {**VALID_BODY, "key_spec": "rsa_2048"},
    "empty_key_spec": {**VALID_BODY, "key_spec": ""},
    "not_an_object": [VALID_BODY],
}


def test_request_model_is_a_valid_draft04_schema():
    assert REQUEST_MODEL_SCHEMA["$schema"] == "http://json-schema.org/draft-04/schema#"
    Draft4Validator.check_schema(REQUEST_MODEL_SCHEMA)


@pytest.mark.parametrize("body", VALID_MODEL_BODIES.values(), ids=VALID_MODEL_BODIES.keys())
def test_request_model_accepts_valid_body(body):
    assert list(Draft4Validator(REQUEST_MODEL_SCHEMA).iter_errors(body)) == []


@pytest.mark.parametrize("body", INVALID_MODEL_BODIES.values(), ids=INVALID_MODEL_BODIES.keys())
def test_request_model_rejects_invalid_body(body):
    assert not Draft4Validator(REQUEST_MODEL_SCHEMA).is_valid(body)
