"""Close the gaps between moto 5.2.5's API Gateway (REST, v1) and what our Terraform stack calls.

Everything here speaks the real wire protocol (same paths, camelCase JSON, real
status codes, ``X-Amzn-ErrorType`` errors) because the AWS provider's Go SDK is
the client.  The gaps, each confirmed against a plain ``moto_server``:

* Client certificates (``/clientcertificates``) have no route at all: 404 HTML.
* ``UpdateStage`` silently drops ``replace /clientCertificateId`` (the provider
  sets a stage's certificate that way, even on create: ``CreateStage`` has no
  such field), so the stage never shows a certificate.
* ``TagResource``/``GetTags``/``UntagResource`` only route stage ARNs; any other
  ARN (REST API, API key, usage plan, client certificate) is a 404 HTML page.
* ``UpdateDeployment``, ``UpdateIntegration``, ``UpdateIntegrationResponse``, ``UpdateMethod``,
  ``UpdateMethodResponse``, ``UpdateModel`` and ``UpdateResource`` raise ``NotImplementedError``
  (500, which the SDK retries for minutes): any in-place change of the API (a new mapping
  template, say) hung ``terraform apply``. They apply JSON-Patch operations here.
* ``DeleteDeployment`` checks the *name* a deployment was created with instead
  of which stages point at it: it deletes a deployment a stage still uses, and
  refuses one whose stage has moved on.
* ``CreateDeployment`` with the name of an existing stage replaces that stage,
  losing its settings (method settings, logging, tags, certificate).
* ``DeleteApiKey`` leaves the key in its usage plans; API Gateway removes it from them.
* ``UpdateUsagePlan`` stored patched quota and throttle values as the strings patch operations
  carry (``"1000"``), so ``GetUsagePlan`` answered ``"limit": "1000"`` and the Go SDK failed to
  decode it, and a fractional rate (``"12.5"``) was a 500. Numbers are stored as numbers here.
* ``GetUsage`` (``/usageplans/{id}/usage``) has no route: 404 HTML. It answers here from the
  ``UsageLedger`` that the data plane records each keyed request in (``usage_ledger(backend)``).
* A REST API's ``policy`` comes back as plain JSON.  The real API returns it
  with its quotes backslash-escaped, and the provider (``aws_api_gateway_rest_api``
  and ``aws_api_gateway_rest_api_policy`` reads) unescapes it, failing on plain JSON.

Call ``install()`` before the server handles its first API Gateway request:
moto builds the service's Flask routes from ``moto.apigateway.urls.url_paths``
on first use.  The patches are process-wide and idempotent.
"""

import datetime
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from moto.apigateway import urls
from moto.apigateway.exceptions import (
    BadRequestException,
    DeploymentNotFoundException,
    NotFoundException,
    StageStillActive,
)
from moto.apigateway.models import APIGatewayBackend, Deployment, RestAPI, Stage, UsagePlan
from moto.apigateway.responses import APIGatewayResponse
from moto.core.responses import TYPE_RESPONSE
from moto.moto_api._internal import mock_random as random

from .apigw import dataplane
from .apigw.limits import UsageLedger

# API Gateway issues client certificates valid for one year.
CERTIFICATE_LIFETIME = datetime.timedelta(days=365)

_installed = False


class ClientCertificateNotFound(NotFoundException):
    code = 404

    def __init__(self) -> None:
        super().__init__("Invalid Client Certificate identifier specified")


class ClientCertificate:
    """A generated client certificate: a real self-signed RSA certificate, as API Gateway issues."""

    def __init__(self, description: str | None, tags: dict[str, str] | None):
        self.id = random.get_random_string(length=6, lower_case=True)
        self.description = description or ""
        self.tags = dict(tags or {})
        created = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        self.created_date = created
        self.expiration_date = created + CERTIFICATE_LIFETIME
        self.pem = _self_signed_pem(self.id, created, self.expiration_date)

    def to_json(self) -> dict[str, Any]:
        return {
            "clientCertificateId": self.id,
            "description": self.description,
            "pemEncodedCertificate": self.pem,
            "createdDate": int(self.created_date.timestamp()),
            "expirationDate": int(self.expiration_date.timestamp()),
            "tags": self.tags,
        }


def _self_signed_pem(common_name: str, not_before: datetime.datetime, not_after: datetime.datetime) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _certificates(backend: APIGatewayBackend) -> dict[str, ClientCertificate]:
    """The account/region's certificates; kept on the backend so ``/moto-api/reset`` clears them too."""
    return backend.__dict__.setdefault("local_aws_client_certificates", {})


def usage_ledger(backend: APIGatewayBackend) -> UsageLedger:
    """The account/region's request counts per usage plan and API key, which the data plane records into.

    Kept on the backend, like the certificates, so ``/moto-api/reset`` clears them too.
    """
    return backend.__dict__.setdefault("local_aws_usage", UsageLedger())


def _usage_date(value: str | None, name: str) -> datetime.date:
    """A ``GetUsage`` date parameter (``YYYY-MM-DD``), or the ``BadRequestException`` API Gateway answers."""
    if not value:
        raise BadRequestException(
            f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        )
    try:
        if len(value) != 10:
            raise ValueError(value)
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise BadRequestException(f"Invalid {name} specified: '{value}'. Expected format: YYYY-MM-DD") from None


def _get_certificate(backend: APIGatewayBackend, certificate_id: str) -> ClientCertificate:
    certificate = _certificates(backend).get(certificate_id)
    if certificate is None:
        raise ClientCertificateNotFound()
    return certificate


def _tagged_resource(backend: APIGatewayBackend, resource_arn: str) -> Any:
    """The model object a tagging ARN (``arn:aws:apigateway:REGION::/PATH``) names; all keep a ``tags`` dict."""
    match resource_arn.partition("::")[2].strip("/").split("/"):
        case ["restapis", api_id]:
            return backend.get_rest_api(api_id)
        case ["restapis", api_id, "stages", stage_name]:
            return backend.get_stage(api_id, stage_name)
        case ["apikeys", key_id]:
            return backend.get_api_key(key_id)
        case ["usageplans", plan_id]:
            return backend.get_usage_plan(plan_id)
        case ["clientcertificates", certificate_id]:
            return _get_certificate(backend, certificate_id)
    raise BadRequestException(f"Invalid ARN specified in the request: {resource_arn}")


class LocalAPIGatewayResponse(APIGatewayResponse):
    """moto's API Gateway handler plus the operations it lacks.

    moto's ``dispatch`` picks the method named after the operation that the
    botocore model matches for the request's method and path.
    """

    def _get_action(self) -> str:
        """The operation; also ``GetUsage`` without its dates, which moto's router can't match.

        moto's router treats required query arguments as part of the route, so a ``GetUsage``
        lacking ``startDate``/``endDate`` matched nothing (an empty 404) instead of API
        Gateway's 400 ``BadRequestException``, which ``get_usage`` raises.
        """
        action = super()._get_action()
        if action is None and self.method == "GET":
            match self.path.partition("?")[0].strip("/").split("/"):
                case ["usageplans", plan_id, "usage"]:
                    self.uri_match = {"usageplanId": plan_id}
                    return "GetUsage"
        return action

    # Path parameters, by the botocore model's names, already percent-decoded.
    def _certificate_id(self) -> str:
        return self.uri_match["clientcertificate_id"]

    def _resource_arn(self) -> str:
        return self.uri_match["resource_arn"]

    def generate_client_certificate(self) -> TYPE_RESPONSE:
        certificate = ClientCertificate(self._get_param("description"), self._get_param("tags"))
        _certificates(self.backend)[certificate.id] = certificate
        return 201, {"status": 201}, json.dumps(certificate.to_json())

    def get_client_certificates(self) -> str:
        items = [c.to_json() for c in _certificates(self.backend).values()]
        return json.dumps({"item": items})

    def get_client_certificate(self) -> str:
        return json.dumps(_get_certificate(self.backend, self._certificate_id()).to_json())

    def update_client_certificate(self) -> str:
        certificate = _get_certificate(self.backend, self._certificate_id())
        for op in self._get_param("patchOperations") or []:
            if op["path"] != "/description":
                raise BadRequestException(f"Invalid patch path {op['path']}")
            certificate.description = op.get("value") or ""
        return json.dumps(certificate.to_json())

    def delete_client_certificate(self) -> TYPE_RESPONSE:
        certificate = _get_certificate(self.backend, self._certificate_id())
        del _certificates(self.backend)[certificate.id]
        return 202, {"status": 202}, ""

    def get_tags(self) -> str:
        resource = _tagged_resource(self.backend, self._resource_arn())
        return json.dumps({"tags": resource.tags or {}})

    def tag_resource(self) -> TYPE_RESPONSE:
        resource = _tagged_resource(self.backend, self._resource_arn())
        resource.tags = {**(resource.tags or {}), **(self._get_param("tags") or {})}
        return 204, {"status": 204}, ""

    def untag_resource(self) -> TYPE_RESPONSE:
        resource = _tagged_resource(self.backend, self._resource_arn())
        removed = set(self.querystring.get("tagKeys") or [])
        resource.tags = {k: v for k, v in (resource.tags or {}).items() if k not in removed}
        return 204, {"status": 204}, ""

    def update_deployment(self) -> str:
        api = self.backend.get_rest_api(self.uri_match["restapi_id"])
        deployment = api.deployments.get(self.uri_match["deployment_id"])
        if deployment is None:
            raise DeploymentNotFoundException()
        for op in self._get_param("patchOperations") or []:
            if op["path"] != "/description":
                raise BadRequestException(f"Invalid patch path {op['path']}")
            deployment.description = op.get("value") or ""
        return json.dumps(deployment.to_json())

    def _method(self) -> Any:
        params = self.uri_match
        return self.backend.get_method(params["restapi_id"], params["resource_id"], params["http_method"])

    def _patched(self, target: Any) -> str:
        if target is None:
            raise NotFoundException("Invalid resource identifier specified")
        _apply_patch(target, self._get_param("patchOperations") or [])
        return json.dumps(target.to_json())

    def update_integration(self) -> str:
        return self._patched(self._method().method_integration)

    def update_integration_response(self) -> str:
        integration = self._method().method_integration
        return self._patched((integration.integration_responses or {}).get(self.uri_match["status_code"]))

    def update_method(self) -> str:
        return self._patched(self._method())

    def update_method_response(self) -> str:
        return self._patched(self._method().get_response(self.uri_match["status_code"]))

    def update_model(self) -> str:
        return self._patched(self.backend.get_model(self.uri_match["restapi_id"], self.uri_match["model_name"]))

    def update_resource(self) -> str:
        return self._patched(self.backend.get_resource(self.uri_match["restapi_id"], self.uri_match["resource_id"]))

    def get_usage(self) -> str:
        """Daily ``[used, remaining]`` per API key: the plan's current keys (zeros if idle) and any key counted.

        One page holds everything, so ``position`` is never returned and ``limit`` is ignored.
        """
        plan_id = self.uri_match["usageplanId"]
        start = _usage_date(self._get_param("startDate"), "startDate")
        end = _usage_date(self._get_param("endDate"), "endDate")
        if end < start:
            raise BadRequestException("The end date must not be before the start date")
        plan = self.backend.get_usage_plan(plan_id)  # UsagePlanNotFoundException for an unknown plan
        ledger = usage_ledger(self.backend)
        key_ids = set(self.backend.usage_plan_keys.get(plan_id, {})) | ledger.keys(plan_id)
        wanted = self._get_param("keyId")
        if wanted:
            key_ids &= {wanted}
        values: dict[str, list[list[int]]] = {}
        for key_id in sorted(key_ids):
            values.update(ledger.usage(plan_id, plan.quota, start, end, key_id=key_id))
        # The wire name is "values"; botocore and the Go SDK map it to the output's ``items``.
        return json.dumps(
            {"usagePlanId": plan_id, "startDate": start.isoformat(), "endDate": end.isoformat(), "values": values}
        )


# Usage-plan patch paths whose values API Gateway stores as numbers: (block, key, type).
_USAGE_PLAN_NUMBERS = {
    "/throttle/rateLimit": ("throttle", "rateLimit", float),
    "/throttle/burstLimit": ("throttle", "burstLimit", int),
    "/quota/limit": ("quota", "limit", int),
    "/quota/offset": ("quota", "offset", int),
}

# Wire names whose moto attribute is not simply the snake_case of the camelCase name.
_ATTRIBUTES = {"passthroughBehavior": "passthrough_behaviour", "type": "integration_type"}
_INTEGERS = {"timeoutInMillis"}
_BOOLEANS = {"apiKeyRequired"}


def _snake(name: str) -> str:
    return _ATTRIBUTES.get(name) or "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _apply_patch(target: Any, operations: list[dict[str, Any]]) -> None:
    """Apply API Gateway's JSON-Patch subset: `/field` or `/mapField/key` (`~1` is `/`, `~0` is `~`)."""
    for op in operations:
        field, _, key = op["path"].lstrip("/").partition("/")
        key = key.replace("~1", "/").replace("~0", "~")
        attribute, value = _snake(field), op.get("value")
        if field in _INTEGERS and value is not None:
            value = int(value)
        elif field in _BOOLEANS and value is not None:
            value = str(value).lower() == "true"
        if not hasattr(target, attribute):
            raise BadRequestException(f"Invalid patch path {op['path']}")
        if not key:
            setattr(target, attribute, None if op["op"] == "remove" else value)
            continue
        mapping = dict(getattr(target, attribute) or {})
        if op["op"] == "remove":
            mapping.pop(key, None)
        else:
            mapping[key] = value
        setattr(target, attribute, mapping)


def _patch_routes() -> None:
    """Send all of moto's API Gateway routes to our handler and add the missing ones.

    moto's two tag routes only match stage ARNs (``[^/]+`` can't span the
    ARN's slashes, which arrive percent-decoded), so one route takes any ARN.
    """
    paths = urls.url_paths
    for path, handler in list(paths.items()):
        if path.startswith("{0}/tags/"):
            del paths[path]
        elif handler == APIGatewayResponse.dispatch:
            paths[path] = LocalAPIGatewayResponse.dispatch
    paths.update(
        {
            "{0}/clientcertificates$": LocalAPIGatewayResponse.dispatch,
            "{0}/clientcertificates/(?P<clientcertificate_id>[^/]+)/?$": LocalAPIGatewayResponse.dispatch,
            "{0}/tags/(?P<resource_arn>.+)$": LocalAPIGatewayResponse.dispatch,
            "{0}/usageplans/(?P<usage_plan_id>[^/]+)/usage$": LocalAPIGatewayResponse.dispatch,
        }
    )


def _patch_models() -> None:
    """Wrap moto's model methods; each wrapper keeps the original as ``moto_<name>``."""
    moto_rest_api_to_dict = RestAPI.to_dict
    moto_rest_api_create_deployment = RestAPI.create_deployment
    moto_stage_to_json = Stage.to_json
    moto_stage_apply_operations = Stage.apply_operations

    def rest_api_to_dict(self: RestAPI) -> dict[str, Any]:
        dct = moto_rest_api_to_dict(self)
        if self.policy:
            dct["policy"] = json.dumps(self.policy)[1:-1]  # the escaped contents of a JSON string
        return dct

    def rest_api_create_deployment(
        self: RestAPI, name: str, description: str, stage_variables: Any = None
    ) -> Deployment:
        # An existing stage is repointed at the new deployment, not replaced.
        existing = self.stages.get(name) if name else None
        deployment = moto_rest_api_create_deployment(self, name, description, stage_variables)
        dataplane.remember_snapshot(self, deployment)  # what the stage serves until its next deployment
        if existing is not None:
            existing.deployment_id = deployment.id
            existing.variables.update(stage_variables or {})
            self.stages[name] = existing
        return deployment

    def rest_api_delete_deployment(self: RestAPI, deployment_id: str) -> Deployment:
        if deployment_id not in self.deployments:
            raise DeploymentNotFoundException()
        if any(stage.deployment_id == deployment_id for stage in self.stages.values()):
            raise StageStillActive()
        return self.deployments.pop(deployment_id)

    def stage_to_json(self: Stage) -> dict[str, Any]:
        dct = moto_stage_to_json(self)
        if self.client_certificate_id:
            dct["clientCertificateId"] = self.client_certificate_id
        return dct

    def stage_apply_operations(self: Stage, patch_operations: list[dict[str, Any]]) -> Stage:
        others = []
        for op in patch_operations:
            if op["path"] == "/clientCertificateId":
                self.client_certificate_id = op.get("value") or None  # "remove" and "" clear it
            else:
                others.append(op)
        return moto_stage_apply_operations(self, others)

    moto_delete_api_key = APIGatewayBackend.delete_api_key

    def delete_api_key(self: APIGatewayBackend, api_key_id: str) -> None:
        moto_delete_api_key(self, api_key_id)
        for plan_keys in self.usage_plan_keys.values():
            plan_keys.pop(api_key_id, None)

    moto_usage_plan_apply_patch_operations = UsagePlan.apply_patch_operations

    def usage_plan_apply_patch_operations(self: UsagePlan, patch_operations: list[dict[str, Any]]) -> None:
        others = []
        for op in patch_operations:
            number = _USAGE_PLAN_NUMBERS.get(op["path"])
            if number is None or op["op"] not in ("add", "replace"):
                others.append(op)
                continue
            block, key, cast = number
            try:
                value = cast(op["value"])
            except (TypeError, ValueError):
                raise BadRequestException(f"Invalid value {op.get('value')!r} for {op['path']}") from None
            setattr(self, block, {**(getattr(self, block) or {}), key: value})
        moto_usage_plan_apply_patch_operations(self, others)

    APIGatewayBackend.delete_api_key = delete_api_key
    UsagePlan.apply_patch_operations = usage_plan_apply_patch_operations
    RestAPI.to_dict = rest_api_to_dict
    RestAPI.create_deployment = rest_api_create_deployment
    RestAPI.delete_deployment = rest_api_delete_deployment
    Stage.client_certificate_id = None
    Stage.to_json = stage_to_json
    Stage.apply_operations = stage_apply_operations


def install() -> None:
    """Apply the route and model patches once per process."""
    global _installed
    if not _installed:
        _patch_routes()
        _patch_models()
        _installed = True
