"""A function's VPC placement, locally: its security groups decide what it can reach.

On AWS a function in a VPC reaches only what its security groups' egress rules (and the
subnets' routes) let it reach; a call to anything else is never answered and times out. The
local runtime stands in for that with the template's own rules, checked on every connection
the function opens while it runs:

- **AWS APIs** (every boto3 call): reachable on 443 through a rule to a public range (a NAT or
  internet route: ``0.0.0.0/0``), to a security group (interface VPC endpoints) or, for
  DynamoDB and S3 only, to a prefix list (their gateway endpoints). A rule to a private range
  is taken to lead to the core system, not to an endpoint.
- **The core system** (the HTTP adapter's connections): a rule must allow TCP on its port to
  its address. The local fake core system on 127.0.0.1 stands in for the core system at the
  template's address and on 443 (the stack's URL is a deploy-time parameter): any rule to a
  CIDR or a security group on 443 lets it through. An IP address in the URL is checked against
  the CIDRs.

What is not modelled, and said so in docs/adr/0005: route tables, NAT gateways, network ACLs
and DNS (a rule is taken to have a route behind it), which interface endpoint a security group
belongs to (any service is taken to have one), and the time a refused connection takes (AWS
waits out the connect timeout; here the refusal is immediate). A refused AWS call raises
botocore's ``ConnectTimeoutError``; a refused core-system connection is a socket timeout, which
the HTTP adapter sees as the connect timeout it would see on AWS.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import urllib3.util.connection
from botocore.exceptions import ConnectTimeoutError
from botocore.handlers import BUILTIN_HANDLERS

HTTPS_PORT = 443
# AWS-managed prefix lists exist for the gateway endpoints of these services only.
GATEWAY_ENDPOINT_SERVICES = frozenset({"dynamodb", "s3"})
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True)
class EgressRule:
    """One egress rule of a security group, as the template writes it."""

    protocol: str  # "tcp", "udp", "icmp", or "-1" (all)
    from_port: int
    to_port: int
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    prefix_list: str | None = None
    security_group: str | None = None

    @classmethod
    def from_template(cls, props: dict[str, Any]) -> EgressRule:
        protocol = str(props.get("IpProtocol", "-1"))
        all_ports = protocol in ("-1", "all")
        cidr_text = props.get("CidrIp") or props.get("CidrIpv6")
        return cls(
            protocol="-1" if all_ports else protocol.lower(),
            from_port=0 if all_ports else int(props.get("FromPort", 0)),
            to_port=65535 if all_ports else int(props.get("ToPort", 65535)),
            cidr=ipaddress.ip_network(str(cidr_text), strict=False) if cidr_text else None,
            prefix_list=_text(props.get("DestinationPrefixListId")),
            security_group=_text(props.get("DestinationSecurityGroupId")),
        )

    def allows_tcp(self, port: int) -> bool:
        return self.protocol in ("-1", "tcp", "6") and self.from_port <= port <= self.to_port

    def leads_to_aws(self, service: str) -> bool:
        """Whether this rule is a way to the service's API endpoint."""
        if not self.allows_tcp(HTTPS_PORT):
            return False
        if self.cidr is not None:
            return not self.cidr.is_private  # a public range: the route out to public endpoints
        if self.prefix_list is not None:
            return service in GATEWAY_ENDPOINT_SERVICES
        return self.security_group is not None

    def leads_to(self, host: str, port: int) -> bool:
        """Whether this rule lets a TCP connection to ``host:port`` out."""
        address = _address(host)
        if address is not None and address in _LOOPBACK:
            # The local core system stands in for the core system, on the HTTPS port.
            return self.allows_tcp(HTTPS_PORT) and self.prefix_list is None
        if not self.allows_tcp(port):
            return False
        if self.cidr is not None:
            return address is None or address in self.cidr  # a name: the route is the deployer's
        return self.prefix_list is None  # a security group peer (its members are not known here)


@dataclass
class SecurityGroups:
    """The egress rules of every security group of the template, by group id."""

    rules: dict[str, list[EgressRule]] = field(default_factory=dict)

    def add_group(self, group_id: str, egress: list[dict[str, Any]]) -> None:
        self.rules.setdefault(group_id, []).extend(EgressRule.from_template(r) for r in egress)

    def add_rule(self, group_id: str, props: dict[str, Any]) -> None:
        self.rules.setdefault(group_id, []).append(EgressRule.from_template(props))


@dataclass(frozen=True)
class FunctionNetwork:
    """Where one function runs: its subnets (not checked) and its security groups."""

    function_name: str
    security_group_ids: tuple[str, ...]
    subnet_ids: tuple[str, ...]
    groups: SecurityGroups

    def _rules(self) -> list[EgressRule]:
        return [
            rule for group in self.security_group_ids for rule in self.groups.rules.get(group, [])
        ]

    def reaches_aws(self, service: str) -> bool:
        return any(rule.leads_to_aws(service) for rule in self._rules())

    def reaches(self, host: str, port: int) -> bool:
        return any(rule.leads_to(host, port) for rule in self._rules())


running_network: ContextVar[FunctionNetwork | None] = ContextVar("running_network", default=None)
_installed = False
_create_connection: Callable[..., socket.socket] = urllib3.util.connection.create_connection


def install() -> None:
    """Check every SDK call and every urllib3 connection of a function in a VPC (idempotent).

    Outside such a function (the runtime's own plumbing, functions without a VPC) both checks
    pass everything through.
    """
    global _installed
    if not _installed:
        # First: on AWS an unreachable endpoint times out before any authorization happens.
        BUILTIN_HANDLERS.insert(0, ("before-call", _check_aws_call))
        urllib3.util.connection.create_connection = _checked_connection
        _installed = True


def _check_aws_call(model: Any, **_: Any) -> None:
    network = running_network.get()
    if network is None:
        return
    service = model.service_model.endpoint_prefix
    if not network.reaches_aws(service):
        name = network.function_name
        raise ConnectTimeoutError(
            endpoint_url=f"https://{service}.amazonaws.com (no egress from {name}'s security "
            f"groups to it on {HTTPS_PORT}: on AWS the call times out)"
        )


def _checked_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
    network = running_network.get()
    if network is not None:
        host, port = address
        if not network.reaches(host, port):
            # What urllib3 turns into the connect timeout the caller would see on AWS.
            raise TimeoutError(
                f"no egress from {network.function_name}'s security groups to {host}:{port}"
            )
    return _create_connection(address, *args, **kwargs)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return str(value) if value else None
