"""The local runtime: a synthesized stack, provisioned on moto, driven in this process.

moto provides the services; this module provides the turning of the crank that AWS would do
on its own: poll the pipes, dispatch rule targets, poll the SQS event sources, and log every
event. moto is not thread-safe, so everything runs in one thread, one step at a time:

- ``run_until_idle()`` steps until nothing moves (deterministic, for tests);
- the continuous mode of the demo, ``pipeline_run.run_transactions``, keeps writing records
  while it steps, as an authorization system keeps writing, until each has finished.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO

from moto import mock_aws

from payment_local import moto_internals, network
from payment_local.access import botocore_hook
from payment_local.access.authorizer import Authorizer
from payment_local.access.model import build_access_model
from payment_local.access.wiring import act_as_template_principals
from payment_local.assembly import StackAssembly
from payment_local.clients import AwsClients
from payment_local.core_banking import CoreBankingServer, core_banking_server
from payment_local.event_log import EventLog
from payment_local.faults import FaultPlan
from payment_local.functions import cold_start
from payment_local.intrinsics import Environment, Resolver, UnresolvableError
from payment_local.provision import Provisioner, Topology
from payment_local.rules import RuleDispatcher
from payment_local.schedules import Scheduler
from payment_local.tls import LocalCertificateAuthority

botocore_hook.install()  # before any session exists, so every session gets the check
network.install()  # a function in a VPC reaches what its security groups let it reach

MOTO_CONFIG: Any = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


# The parameters of a stack posting over HTTP (payment_stack/stack.py, ``-c posting=http``):
# when the template has them, the runtime starts a fake core system and gives its URL and CA.
CORE_BANKING_URL_PARAMETER = "CoreBankingUrl"
CORE_BANKING_CA_PARAMETER = "CoreBankingCaBundle"


class NotIdleError(RuntimeError):
    """The pipeline kept moving past the step limit: something loops."""


@contextmanager
def local_aws_environment(environment: Environment) -> Iterator[None]:
    """Fake credentials and the local region, so nothing can reach a real AWS account."""
    saved = dict(os.environ)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(proxy, None)
    os.environ.update(
        {
            # Placeholders: moto accepts any credentials, and no real ones may be picked up.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": environment.region,
            "AWS_REGION": environment.region,
            # botocore sends DynamoDB Streams calls to an account-specific host moto does not
            # route.
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "MOTO_ACCOUNT_ID": environment.account,
        }
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class StepCounts:
    pipes: int = 0
    rules: int = 0
    event_sources: int = 0
    events_logged: int = 0

    @property
    def total(self) -> int:
        return self.pipes + self.rules + self.event_sources + self.events_logged


class LocalRuntime:
    """Use as a context manager: entering provisions the stack on a fresh moto."""

    def __init__(
        self,
        assembly: StackAssembly,
        *,
        environment: Environment | None = None,
        function_log: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        enforce_access: bool = True,
        parameters: Mapping[str, str] | None = None,
        core_banking_authority: LocalCertificateAuthority | None = None,
        core_banking_requires_client_certificates: bool | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        """
        :param enforce_access: authorize every call made on behalf of a template principal
            against the template's IAM, resource and key policies (default). Off, nothing is
            checked and no denial is reported.
        :param parameters: values of the template's parameters, as ``cdk deploy
            --parameters`` gives them; a parameter not given takes its default. For a stack
            posting over HTTP, the core system's URL and CA default to the fake core system
            the runtime starts.
        :param core_banking_authority: the CA whose certificate the fake core system presents
            (e.g. one whose bundle the template ships in a layer). Default: one generated now.
        :param core_banking_requires_client_certificates: whether the fake core system refuses
            a TLS handshake without a client certificate its CA issued (mutual TLS). Default:
            when the template gives a function a client certificate secret, whose value the
            runtime then issues.
        :param faults: the posting system's faults to play (``payment_local.faults``).
        """
        self.assembly = assembly
        self.parameters = dict(parameters or {})
        self.core_banking_authority = core_banking_authority
        self.core_banking_requires_client_certificates = core_banking_requires_client_certificates
        self.core_banking: CoreBankingServer | None = None
        self.enforce_access = enforce_access
        self.environment = environment or Environment(stack_name=assembly.stack_name)
        self.function_log = function_log
        self.clock = clock
        # What advance_time has added to the clock: scheduled rules fire on clock + offset.
        self.time_offset = 0.0
        self.topology = Topology()
        self.faults = faults or FaultPlan([])
        self._stack: list[Any] = []

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> LocalRuntime:
        moto_internals.apply_patches()
        environment = local_aws_environment(self.environment)
        environment.__enter__()
        self._stack.append(environment)
        try:
            mock = mock_aws(config=MOTO_CONFIG)
            mock.start()
            self._stack.append(mock)
            self.clients = AwsClients(self.environment.region)
            self.resolver = Resolver(self.environment)
            self.resolver.refs.update(self._parameter_values())
            self.topology = Provisioner(
                self.assembly, self.clients, self.resolver, self.function_log
            ).provision()
            cold_start(self.topology.functions.values())
            if self.core_banking is not None:
                self._let_the_core_system_accept_the_secret(self.core_banking)
            self.access = Authorizer(
                build_access_model(self.assembly.resources, self.resolver),
                enforce=self.enforce_access,
            )
            if self.enforce_access:
                self.access.plumbing_keys.add(os.environ.get("AWS_ACCESS_KEY_ID"))
                act_as_template_principals(self.topology, self.access, self.environment.region)
                moto_internals.set_role_credentials(self._role_credentials)
                botocore_hook.activate(self.access)
            for pipe in self.topology.pipes:
                pipe.start()
            self.rules = RuleDispatcher(self.clients, self.topology.tap_targets)
            self.scheduler = Scheduler(
                self.clients,
                account=self.environment.account,
                region=self.environment.region,
                now=self.now,
                rules=self.topology.schedules,
            )
            self.scheduler.start()
            self.event_log = EventLog(self.clients, self.clock)
            self.event_log.attach(self.topology.buses.values())
            if self.faults:
                installed = self.faults.install(self)
                installed.__enter__()
                self._stack.append(installed)
        except BaseException as error:
            # A runtime that failed to start leaves neither moto running nor its environment.
            self.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        botocore_hook.activate(None)
        moto_internals.set_role_credentials(None)
        moto_internals.clear_functions()
        while self._stack:
            item = self._stack.pop()
            if hasattr(item, "stop"):
                item.stop()
            else:
                item.__exit__(exc_type, exc, traceback)

    def _parameter_values(self) -> dict[str, str]:
        declared: dict[str, Any] = self.assembly.template.get("Parameters", {})
        given = dict(self.parameters)
        if CORE_BANKING_URL_PARAMETER in declared and CORE_BANKING_URL_PARAMETER not in given:
            # A core system on 127.0.0.1 over TLS, its certificate from a CA generated now.
            server = core_banking_server(self.core_banking_authority)
            self.core_banking = server.__enter__()
            self._stack.append(server)
            given[CORE_BANKING_URL_PARAMETER] = self.core_banking.url
            if CORE_BANKING_CA_PARAMETER in declared:
                # A template with no such parameter has its bundle already (a layer file).
                given.setdefault(CORE_BANKING_CA_PARAMETER, self.core_banking.ca_pem)
        unknown = set(given) - set(declared)
        if unknown:
            raise UnresolvableError(f"the template has no parameter {', '.join(sorted(unknown))}")
        values: dict[str, str] = {}
        for name, declaration in declared.items():
            if name in given:
                values[name] = given[name]
            elif "Default" in declaration:
                values[name] = str(declaration["Default"])
        return values

    def _let_the_core_system_accept_the_secret(self, server: CoreBankingServer) -> None:
        """The core system accepts the credential the posting function will read: as a bank
        puts the token its core team issued into the secret, the other way round. A client
        certificate secret gets a certificate the core system's CA issues now, as the bank's
        PKI would issue one and the deployer put it there."""
        client_certificates = False
        for function in self.topology.functions.values():
            arn = function.environment.get("CORE_BANKING_SECRET_ARN")
            if arn:
                value = self.clients.secretsmanager.get_secret_value(SecretId=arn)["SecretString"]
                prefix = function.environment.get("CORE_BANKING_CREDENTIALS_PREFIX", "")
                server.state.expected_credential = prefix + value
                server.state.credentials_header = function.environment.get(
                    "CORE_BANKING_CREDENTIALS_HEADER", "Authorization"
                )
            certificate_arn = function.environment.get("CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN")
            if certificate_arn:
                chain, key = server.authority.issue_client_certificate(function.name)
                self.clients.secretsmanager.put_secret_value(
                    SecretId=certificate_arn,
                    SecretString=json.dumps({"certificate": chain, "privateKey": key}),
                )
                client_certificates = True
        required = self.core_banking_requires_client_certificates
        if required if required is not None else client_certificates:
            server.require_client_certificates()

    def _role_credentials(self, role_arn: str) -> tuple[str, str, str]:
        credentials = self.access.credentials_for(role_arn)
        return credentials.access_key, credentials.secret_key, credentials.session_token

    # -- what the stack exposes -----------------------------------------------------------

    def output(self, name: str) -> Any:
        """A stack output, resolved against the local resources (as ``cdk deploy`` prints)."""
        outputs = self.assembly.template.get("Outputs", {})
        if name not in outputs:
            raise KeyError(f"the stack has no output {name!r} (it has: {', '.join(outputs)})")
        return self.resolver.resolve(outputs[name]["Value"])

    # -- time -----------------------------------------------------------------------------

    def now(self) -> float:
        """The runtime's time (epoch seconds): the clock, plus what ``advance_time`` added."""
        return self.clock() + self.time_offset

    def advance_time(self, seconds: float) -> None:
        """Let ``seconds`` pass for the scheduled rules (the next ``step`` fires what is due,
        each rule once at the new time). Functions' own clocks are not moved: what a
        schedule drives reads the time from its event (the ledger's expiry sweeper does)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.time_offset += seconds

    # -- turning the crank ----------------------------------------------------------------

    def step(self) -> StepCounts:
        """One pass over every poller; the counts say how much moved."""
        counts = StepCounts()
        counts.rules += self.scheduler.poll()
        for pipe in self.topology.pipes:
            counts.pipes += pipe.poll()
        counts.events_logged += self.event_log.poll()
        counts.rules += self.rules.poll()
        for source in self.topology.event_sources:
            counts.event_sources += source.poll()
        counts.events_logged += self.event_log.poll()
        return counts

    def run_until_idle(self, max_steps: int = 10_000) -> int:
        """Step until a whole pass moves nothing; return the number of steps taken."""
        for steps in range(1, max_steps + 1):
            if self.step().total == 0:
                return steps
        raise NotIdleError(f"still busy after {max_steps} steps")
