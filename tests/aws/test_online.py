"""`mlhpc validate --online`: zones and instance offerings from moto's EC2, quotas through a Stubber.

moto's Service Quotas knows only the VPC quotas, so the EC2 vCPU quotas are stubbed with
botocore's Stubber (the exact calls and parameters the check makes are asserted by it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from mlhpc.config import parse_config
from mlhpc_app.aws import online
from mlhpc_app.aws.session import Aws
from mlhpc_app.cli.main import app


@pytest.fixture
def quotas(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """Moto for EC2; a stubbed Service Quotas client handed out by Aws.client."""
    with mock_aws():
        client = boto3.client("service-quotas", region_name="us-east-1")
        stub = Stubber(client)
        real = Aws.client

        def client_for(self: Aws, service: str, *, retries: bool = True) -> Any:
            return client if service == "service-quotas" else real(self, service, retries=retries)

        monkeypatch.setattr(Aws, "client", client_for)
        with stub:
            yield stub


def quota(stub: Stubber, code: str, value: float) -> None:
    stub.add_response(
        "get_service_quota",
        {"Quota": {"QuotaCode": code, "Value": value, "ServiceCode": "ec2"}},
        {"ServiceCode": "ec2", "QuotaCode": code},
    )


def test_quota_families() -> None:
    assert online.quota_for("p5.48xlarge", spot=False)[0] == "L-417A185B"
    assert online.quota_for("g5.xlarge", spot=True)[0] == "L-3819A6DF"
    assert online.quota_for("inf2.xlarge", spot=False)[0] == "L-1945791B"
    assert online.quota_for("c6i.large", spot=False)[0] == "L-1216C47A"
    assert online.quota_for("trn1.32xlarge", spot=False)[0] == "L-2C3B7624"


def test_enough_quota_and_offered_everywhere(quotas: Stubber) -> None:
    quota(quotas, "L-1216C47A", 64)
    config, _ = parse_config("project: {name: mlhpc}\n")
    issues = online.check(Aws.connect(), config, extra_instance_types=["c5.large"], nodes=2)
    assert issues == []
    quotas.assert_no_pending_responses()


def test_quota_too_small_says_how_to_raise_it(quotas: Stubber) -> None:
    quota(quotas, "L-417A185B", 0)
    config, _ = parse_config("project: {name: mlhpc}\n")
    [issue] = online.check(Aws.connect(), config, extra_instance_types=["p4d.24xlarge"], nodes=2)
    assert issue.code == "ONL004"
    assert issue.message == (
        "quota 'Running On-Demand P instances' (L-417A185B) is 0 vCPUs; p4d.24xlarge x2 (192 vCPUs) need 192"
    )
    assert issue.fix == (
        "request an increase to at least 192: aws service-quotas request-service-quota-increase "
        "--service-code ec2 --quota-code L-417A185B --desired-value 192"
    )


def test_type_not_offered_in_a_pinned_zone(quotas: Stubber) -> None:
    quota(quotas, "L-417A185B", 1000)
    config, _ = parse_config(
        "project: {name: mlhpc}\nnetwork:\n  availability_zones: [us-east-1a, us-east-1e]\n"
    )
    [issue] = online.check(Aws.connect(), config, extra_instance_types=["p4d.24xlarge"])
    assert issue.code == "ONL002"
    assert issue.message == (
        "p4d.24xlarge is not offered in us-east-1e (offered in: us-east-1a, us-east-1b, us-east-1c, us-east-1d)"
    )
    assert issue.fix == "pin network.availability_zones to zones that offer it, e.g. [us-east-1a, us-east-1b]"


def test_unknown_zone_and_type_not_offered(quotas: Stubber) -> None:
    config, _ = parse_config(
        "project: {name: mlhpc}\nnetwork:\n  availability_zones: [us-east-1a, us-east-1q]\n"
    )
    issues = online.check(Aws.connect(), config, extra_instance_types=["zz9.huge"])
    codes = [(i.code, i.path) for i in issues]
    assert ("ONL001", "network.availability_zones[1]") in codes
    assert ("ONL003", "--instance-type[0]") in codes
    zone = next(i for i in issues if i.code == "ONL001")
    assert zone.message == "zone us-east-1q does not exist (or is not available) in us-east-1"


def test_cli_online_reports_and_exits_1(quotas: Stubber, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[2])
    quota(quotas, "L-417A185B", 0)
    result = CliRunner().invoke(
        app, ["validate", "config/default.yaml", "--online", "--instance-type", "p4d.24xlarge"]
    )
    assert result.exit_code == 1, result.output
    assert "ERROR [ONL004] config/default.yaml hpc.compute" in result.stdout
    assert "quota 'Running On-Demand P instances' (L-417A185B) is 0 vCPUs" in result.stdout
    assert (
        "config/default.yaml: 1 error - fix them and run `mlhpc validate config/default.yaml` again."
        in result.output
    )
