"""The HTTP variant's network placement, from ``-c`` values: a VPC the bank already has.

    cdk deploy -c posting=http \\
        -c coreBankingVpcId=vpc-0abc -c coreBankingSubnetIds=subnet-1,subnet-2 \\
        -c coreBankingCidr=10.20.0.0/16 -c awsEndpoints=pl-6ea54007,sg-0endpoints

The VPC is imported by id (no lookup, so synth needs no AWS account): a bank's networks are
owned by its network team, and the posting function joins given subnets. ``awsEndpoints`` are
the peers the function may reach on 443 for DynamoDB, EventBridge and Secrets Manager: a
gateway endpoint's prefix list (``pl-``), an interface endpoints' security group (``sg-``), or
a CIDR (a NAT route: ``0.0.0.0/0``). Without them the function reaches none of those APIs.
"""

from __future__ import annotations

import ipaddress
import re

from aws_cdk import Annotations, Fn
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from payment_stack.posting_target import CoreBankingNetwork

VPC_CONTEXT_KEY = "coreBankingVpcId"
SUBNETS_CONTEXT_KEY = "coreBankingSubnetIds"
CIDR_CONTEXT_KEY = "coreBankingCidr"
ENDPOINTS_CONTEXT_KEY = "awsEndpoints"
NETWORK_CONTEXT_KEYS = (
    VPC_CONTEXT_KEY,
    SUBNETS_CONTEXT_KEY,
    CIDR_CONTEXT_KEY,
    ENDPOINTS_CONTEXT_KEY,
)

_VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_PREFIX_LIST_ID = re.compile(r"^pl-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


def network_from_context(scope: Construct) -> CoreBankingNetwork | None:
    """The placement the ``-c`` values describe; None when none is given.

    :raises ValueError: a value that is not what its key takes, or a partial placement.
    """
    values = {key: scope.node.try_get_context(key) for key in NETWORK_CONTEXT_KEYS}
    given = {key: value for key, value in values.items() if value not in (None, "")}
    if not given:
        return None
    missing = [key for key in (VPC_CONTEXT_KEY, SUBNETS_CONTEXT_KEY, CIDR_CONTEXT_KEY)
               if key not in given]  # fmt: skip
    if missing:
        raise ValueError(
            f"a network placement needs -c {', -c '.join(missing)} as well "
            f"(given: {', '.join(sorted(given))})"
        )
    vpc_id = _text(given[VPC_CONTEXT_KEY], VPC_CONTEXT_KEY)
    if not _VPC_ID.match(vpc_id):
        raise ValueError(f"-c {VPC_CONTEXT_KEY}= must be a VPC id (vpc-...), got {vpc_id!r}")
    subnet_ids = _items(given[SUBNETS_CONTEXT_KEY], SUBNETS_CONTEXT_KEY)
    for subnet_id in subnet_ids:
        if not _SUBNET_ID.match(subnet_id):
            raise ValueError(
                f"-c {SUBNETS_CONTEXT_KEY}= takes subnet ids (subnet-...), got {subnet_id!r}"
            )
    core_cidr = _cidr(_text(given[CIDR_CONTEXT_KEY], CIDR_CONTEXT_KEY), CIDR_CONTEXT_KEY)
    endpoints = [
        _peer(item) for item in _items(given.get(ENDPOINTS_CONTEXT_KEY, ""), ENDPOINTS_CONTEXT_KEY)
    ]
    vpc = ec2.Vpc.from_vpc_attributes(
        scope, "CoreBankingVpc", vpc_id=vpc_id, availability_zones=Fn.get_azs()
    )
    # The function and its security group need the VPC's id and the subnets' ids only: the
    # zones and route tables CDK warns about are read by constructs that build subnets.
    Annotations.of(vpc).acknowledge_warning(
        "@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
        "Only the VPC id is used (the security group); the subnets are given by id",
    )
    subnets = []
    for n, subnet_id in enumerate(subnet_ids, start=1):
        subnet = ec2.Subnet.from_subnet_id(scope, f"CoreBankingSubnet{n}", subnet_id)
        Annotations.of(subnet).acknowledge_warning(
            "@aws-cdk/aws-ec2:noSubnetRouteTableId",
            "The function joins the subnet by id; its route table is the network team's",
        )
        subnets.append(subnet)
    return CoreBankingNetwork(
        vpc=vpc,
        core_system=ec2.Peer.ipv4(core_cidr),
        subnets=ec2.SubnetSelection(subnets=subnets),
        aws_endpoints=endpoints,
    )


def _text(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"-c {key}= takes text, got {value!r}")
    return value.strip()


def _items(value: object, key: str) -> list[str]:
    if value in (None, ""):
        return []
    return [item.strip() for item in _text(value, key).split(",") if item.strip()]


def _cidr(text: str, key: str) -> str:
    try:
        return str(ipaddress.IPv4Network(text))
    except ValueError:
        raise ValueError(f"-c {key}= must be an IPv4 CIDR (10.20.0.0/16), got {text!r}") from None


def _peer(item: str) -> ec2.IPeer:
    if _PREFIX_LIST_ID.match(item):
        return ec2.Peer.prefix_list(item)
    if _SECURITY_GROUP_ID.match(item):
        return ec2.Peer.security_group_id(item)
    try:
        return ec2.Peer.ipv4(str(ipaddress.IPv4Network(item)))
    except ValueError:
        raise ValueError(
            f"-c {ENDPOINTS_CONTEXT_KEY}= takes prefix list ids (pl-...), security group ids "
            f"(sg-...) or IPv4 CIDRs (0.0.0.0/0 for a NAT route), got {item!r}"
        ) from None
