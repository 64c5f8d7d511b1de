"""The local stand-in for a function's VPC placement: what its security groups let out."""

from __future__ import annotations

from typing import Any

import pytest

from payment_local.network import EgressRule, FunctionNetwork, SecurityGroups


def _network(*rules: dict[str, Any]) -> FunctionNetwork:
    groups = SecurityGroups()
    groups.add_group("sg-1", list(rules))
    return FunctionNetwork("poster", ("sg-1",), ("subnet-1",), groups)


def _tcp(port: int, **destination: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **destination}


CORE = _tcp(443, CidrIp="10.20.0.0/16")


def test_a_group_with_the_core_system_alone_reaches_no_aws_api() -> None:
    network = _network(CORE)
    for service in ("dynamodb", "events", "secretsmanager"):
        assert not network.reaches_aws(service)


def test_a_gateway_prefix_list_leads_to_dynamodb_and_s3_only() -> None:
    network = _network(CORE, _tcp(443, DestinationPrefixListId="pl-6ea54007"))
    assert network.reaches_aws("dynamodb")
    assert network.reaches_aws("s3")
    assert not network.reaches_aws("secretsmanager")
    assert not network.reaches_aws("events")


@pytest.mark.parametrize(
    "rule",
    [
        _tcp(443, DestinationSecurityGroupId="sg-endpoints"),  # interface endpoints
        _tcp(443, CidrIp="0.0.0.0/0"),  # out through a NAT
        {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"},  # everything, as allow_all_outbound
    ],
)
def test_endpoints_or_a_public_route_lead_to_every_api(rule: dict[str, Any]) -> None:
    network = _network(CORE, rule)
    for service in ("dynamodb", "events", "secretsmanager"):
        assert network.reaches_aws(service)


def test_another_port_to_the_endpoints_does_not_count() -> None:
    assert not _network(_tcp(80, CidrIp="0.0.0.0/0")).reaches_aws("events")


def test_the_core_system_is_reached_on_its_port_and_in_its_range() -> None:
    network = _network(CORE)
    assert network.reaches("10.20.4.5", 443)
    assert not network.reaches("10.21.4.5", 443)  # outside the range
    assert not network.reaches("10.20.4.5", 8443)  # another port
    assert network.reaches("core.bank.internal", 443)  # a name: the route is the deployer's


def test_the_local_core_system_stands_in_on_443_whatever_port_it_listens_on() -> None:
    assert _network(CORE).reaches("127.0.0.1", 50123)
    assert not _network(_tcp(8443, CidrIp="10.20.0.0/16")).reaches("127.0.0.1", 50123)
    assert not _network(_tcp(443, DestinationPrefixListId="pl-6ea54007")).reaches("127.0.0.1", 1)


def test_rules_added_as_resources_of_their_own_count_too() -> None:
    groups = SecurityGroups()
    groups.add_group("sg-1", [CORE])
    network = FunctionNetwork("poster", ("sg-1",), (), groups)
    assert not network.reaches_aws("events")
    groups.add_rule("sg-1", _tcp(443, DestinationSecurityGroupId="sg-endpoints"))
    assert network.reaches_aws("events")


def test_a_rule_reads_all_traffic_as_every_port() -> None:
    rule = EgressRule.from_template({"IpProtocol": "-1", "CidrIp": "10.0.0.0/8"})
    assert rule.allows_tcp(1)
    assert rule.allows_tcp(65535)
