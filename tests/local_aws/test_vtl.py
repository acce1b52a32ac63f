"""The emulator's mapping-template renderer reproduces API Gateway's `$context`, `$input`,
`$stageVariables` and `$util` variables, one behaviour per test."""

import json

import airspeed
import pytest

from constructs_lib.api_contract import REQUEST_TEMPLATE
from local_aws.apigw.vtl import DEFAULT_REQUEST_ID, render

PARAMS = {
    "path": {"id": "from-path"},
    "querystring": {"id": "from-query", "q": "term"},
    "header": {"X-Tenant": "acme", "id": "from-header"},
}


def test_nested_context_values_resolve():
    context = {
        "requestId": "req-1",
        "stage": "prod",
        "identity": {"sourceIp": "203.0.113.7", "apiKeyId": "key-1"},
        "authorizer": {"tenant_id": "t-42"},
    }
    template = "$context.requestId|$context.stage|$context.identity.sourceIp|$context.identity.apiKeyId|"
    template += "$context.authorizer.tenant_id"
    assert render(template, "", context=context) == "req-1|prod|203.0.113.7|key-1|t-42"


def test_missing_context_keys_render_empty_and_are_false():
    template = "[$context.stage][$context.identity.sourceIp]#if($context.stage)T#{else}F#end"
    assert render(template, "", context={"identity": {}}) == "[][]F"


def test_request_id_fills_context_only_when_absent():
    assert render("$context.requestId", "") == DEFAULT_REQUEST_ID
    assert render("$context.requestId", "", request_id="r-1") == "r-1"
    assert render("$context.requestId", "", context={"requestId": "c-1"}, request_id="r-1") == "c-1"


def test_authorizer_context_values_are_stringified():
    context = {"authorizer": {"numKey": 1, "boolKey": True}}
    assert render("$context.authorizer.numKey/$context.authorizer.boolKey", "", context=context) == "1/true"


def test_context_maps_offer_java_map_methods():
    template = "$context.identity.get('sourceIp')|$context.identity.containsKey('x')|$context.identity.size()"
    assert render(template, "", context={"identity": {"sourceIp": "1.2.3.4"}}) == "1.2.3.4|false|1"


def test_stage_variables_resolve_and_missing_ones_render_empty():
    assert render("$stageVariables.alias:[$stageVariables.nope]", "", stage_variables={"alias": "live"}) == "live:[]"


def test_input_params_by_location():
    template = "$input.params().path.id|$input.params().querystring.q|$input.params().header.get('X-Tenant')"
    assert render(template, "", params=PARAMS) == "from-path|term|acme"


def test_input_params_by_name_searches_path_then_query_then_header():
    assert render("$input.params('id')", "", params=PARAMS) == "from-path"
    without_path = {**PARAMS, "path": {}}
    assert render("$input.params('id')", "", params=without_path) == "from-query"


def test_input_params_header_name_lookup_ignores_case():
    assert render("$input.params('x-tenant')", "", params=PARAMS) == "acme"


def test_input_params_absent_name_renders_empty_and_is_false():
    assert render("[$input.params('nope')]#if($input.params('nope'))T#{else}F#end", "", params=PARAMS) == "[]F"


def test_input_body_json_and_path():
    body = '{"a": {"b": [1, "x"]}}'
    assert render("$input.body|$input.json('$.a')|$input.path('$.a.b[1]')", body) == body + '|{"b":[1,"x"]}|x'


def test_util_escape_javascript():
    rendered = render("$util.escapeJavaScript($input.path('$.s'))", json.dumps({"s": 'it\'s "é"/'}))
    assert rendered == 'it\\\'s \\"\\u00E9\\"\\/'


def test_util_parse_json():
    assert render("$util.parseJson($input.path('$.doc')).k", '{"doc": "{\\"k\\": \\"v\\"}"}') == "v"


@pytest.mark.parametrize(
    ("text", "encoded"),
    [("a b", "a+b"), ("a&b=c", "a%26b%3Dc"), ("é€", "%C3%A9%E2%82%AC"), ("*-._~", "*-._%7E")],
)
def test_util_url_encode_is_form_encoding_like_java(text, encoded):
    assert render("$util.urlEncode($input.path('$.t'))", json.dumps({"t": text})) == encoded


def test_util_url_decode_inverts_url_encode():
    assert render("$util.urlDecode($input.path('$.t'))", json.dumps({"t": "a+b%26%C3%A9%2B"})) == "a b&é+"


def test_util_url_decode_rejects_malformed_escapes():
    with pytest.raises(airspeed.TemplateError, match="Malformed %-escape"):
        render("$util.urlDecode('100%')", "")


def test_util_base64_round_trip():
    text = "Key for payments: é€ 🔑"
    encoded = render("$util.base64Encode($input.path('$.t'))", json.dumps({"t": text}))
    assert encoded == "S2V5IGZvciBwYXltZW50czogw6nigqwg8J+UkQ=="
    assert render("$util.base64Decode($input.path('$.t'))", json.dumps({"t": encoded})) == text


def test_request_template_renders_the_expected_event():
    body = {
        "account": "123456789012",
        "region": "eu-west-1",
        "key_usage": "ENCRYPT_DECRYPT",
        "key_alias": "alias/payments",
        "key_description": "Key for payments",
    }
    context = {"identity": {"apiKeyId": "k3y1d"}, "authorizer": {}}
    assert json.loads(render(REQUEST_TEMPLATE, json.dumps(body), context=context)) == {
        "Account": "123456789012",
        "Region": "eu-west-1",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyAlias": "alias/payments",
        "KeyDescription": "Key for payments",
        "Caller": {"ApiKeyId": "k3y1d", "TenantId": ""},
    }
