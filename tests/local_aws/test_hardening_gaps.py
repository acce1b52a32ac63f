"""The gaps the production-hardening resources hit: the seeded hosted zone, ACM issuing at once, Lambda
KMS/tracing updates, log-group key association and AWS-managed KMS keys.

Everything goes over HTTP with boto3, as Terraform's Go SDK would, against an emulator on a free port.
"""

import io
import json
import zipfile

import pytest

from local_aws import LocalAws
from local_aws.route53_seed import SEEDED_HOSTED_ZONES
from tests.support.emulator import client

REGION = "us-east-1"
ACCOUNT = "123456789012"


# --- Route 53 seeded zone -----------------------------------------------------------


def test_seeded_hosted_zone_exists_with_its_fixed_id(emulator):
    route53 = client(emulator, "route53")
    assert SEEDED_HOSTED_ZONES == {"example.test.": "Z0EXAMPLETEST00000001"}
    zone = route53.get_hosted_zone(Id="Z0EXAMPLETEST00000001")["HostedZone"]
    assert (zone["Name"], zone["Config"]["PrivateZone"]) == ("example.test.", False)
    listed = route53.list_hosted_zones_by_name(DNSName="example.test.")["HostedZones"]
    assert [z["Id"] for z in listed if z["Name"] == "example.test."] == ["/hostedzone/Z0EXAMPLETEST00000001"]

    record = {"Name": "api.example.test", "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": "target.test."}]}
    route53.change_resource_record_sets(
        HostedZoneId="Z0EXAMPLETEST00000001",
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]},
    )
    records = route53.list_resource_record_sets(HostedZoneId="Z0EXAMPLETEST00000001")["ResourceRecordSets"]
    assert ("api.example.test.", "CNAME") in {(r["Name"], r["Type"]) for r in records}


def test_seeding_again_keeps_the_one_zone():
    with LocalAws():  # a second emulator in the same process shares moto's state
        pass
    with LocalAws() as aws:
        zones = client(aws, "route53").list_hosted_zones()["HostedZones"]
    assert [z["Id"] for z in zones if z["Name"] == "example.test."] == ["/hostedzone/Z0EXAMPLETEST00000001"]


# --- ACM --------------------------------------------------------------------------


def test_dns_validated_certificate_is_issued_without_waiting(emulator):
    acm = client(emulator, "acm")
    arn = acm.request_certificate(DomainName="keys.example.test", ValidationMethod="DNS")["CertificateArn"]
    certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert certificate["Status"] == "ISSUED"  # moto: PENDING_VALIDATION for 60 s
    (option,) = certificate["DomainValidationOptions"]
    assert option["ResourceRecord"]["Type"] == "CNAME"
    assert option["ResourceRecord"]["Name"].endswith(".keys.example.test.")


# --- Lambda configuration -------------------------------------------------------------


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def function_args(emulator):
    iam, kms = client(emulator, "iam"), client(emulator, "kms")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="hardened-fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    keys = [kms.create_key(Description=f"env key {n}")["KeyMetadata"]["Arn"] for n in (1, 2)]
    return {"role": role, "keys": keys}


def test_update_function_configuration_applies_kms_key_and_tracing(emulator, function_args):
    """Turning `observability.tracing` on or off, or changing the environment key, updates in place."""
    lam = client(emulator, "lambda")
    first_key, second_key = function_args["keys"]
    lam.create_function(
        FunctionName="updated",
        Runtime="python3.12",
        Role=function_args["role"],
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
        KMSKeyArn=first_key,
        TracingConfig={"Mode": "PassThrough"},
    )
    lam.update_function_configuration(FunctionName="updated", KMSKeyArn=second_key, TracingConfig={"Mode": "Active"})
    config = lam.get_function(FunctionName="updated")["Configuration"]
    assert (config["KMSKeyArn"], config["TracingConfig"]["Mode"]) == (second_key, "Active")

    # An empty key removes it, as the provider does when `kms_key_arn` goes away.
    lam.update_function_configuration(FunctionName="updated", KMSKeyArn="")
    assert not lam.get_function(FunctionName="updated")["Configuration"].get("KMSKeyArn")


# --- CloudWatch Logs key association ------------------------------------------------------


def test_log_group_key_can_be_associated_and_removed(emulator):
    """An adopted group of the original modules (no key) takes the operations key in place."""
    logs, kms = client(emulator, "logs"), client(emulator, "kms")
    key = kms.create_key(Description="ops")["KeyMetadata"]["Arn"]
    logs.create_log_group(logGroupName="/aws/lambda/adopted")

    def group_key():
        (group,) = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/adopted")["logGroups"]
        return group.get("kmsKeyId")

    logs.associate_kms_key(logGroupName="/aws/lambda/adopted", kmsKeyId=key)
    assert group_key() == key
    logs.disassociate_kms_key(logGroupName="/aws/lambda/adopted")
    assert group_key() is None
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.associate_kms_key(logGroupName="/aws/lambda/missing", kmsKeyId=key)


# --- KMS ----------------------------------------------------------------------------------


def test_aws_managed_default_key_is_managed_by_aws(emulator):
    kms = client(emulator, "kms")
    described = kms.describe_key(KeyId="alias/aws/dynamodb")["KeyMetadata"]  # created on first use
    assert described["KeyManager"] == "AWS"
    own = kms.create_key(Description="ours")["KeyMetadata"]
    assert own["KeyManager"] == "CUSTOMER"
    customer_keys = [
        key["KeyId"]
        for key in kms.list_keys()["Keys"]
        if kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyManager"] == "CUSTOMER"
    ]
    assert described["KeyId"] not in customer_keys and own["KeyId"] in customer_keys
