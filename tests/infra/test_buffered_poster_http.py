"""BufferedPoster posting to a core system over HTTPS: what is refused at synth, and what
the template gives the function (no ledger, the secret by reference, the CA, the network,
a retry budget that fits the function timeout)."""

from __future__ import annotations

import math
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk.assertions import Template

from payment_local.tls import LocalCertificateAuthority
from payment_posting_functions.domain import http_posting
from payment_stack import PaymentPostingStack, StageConfig
from payment_stack.buffered_poster import BufferedPoster
from payment_stack.posting_target import (
    CA_BUNDLE_ENVIRONMENT_LIMIT,
    CaBundle,
    ConflictMeaning,
    CoreBankingClientCertificate,
    CoreBankingCredentials,
    CoreBankingNetwork,
    PostingTarget,
)
from payment_stack.stack import MTLS_CONTEXT_KEY, POSTING_CONTEXT_KEY
from tests.infra.support import (
    all_allowed_actions,
    bare_stack,
    logical_id,
    make_app,
    ref,
    role_statements,
    stage_values,
)

pytestmark = pytest.mark.slow

URL = "https://core.bank.example/api"
CORE_CIDR = "10.20.0.0/16"


def poster_in(stack: cdk.Stack, **props: Any) -> BufferedPoster:
    bus = events.EventBus(stack, "Bus")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    return BufferedPoster(stack, "Posting", event_bus=bus, encryption_key=key, **props)


def variables(stack: cdk.Stack, poster: BufferedPoster) -> Mapping[str, Any]:
    template = Template.from_stack(stack).to_json()
    env: Mapping[str, Any] = template["Resources"][logical_id(poster.function)]["Properties"][
        "Environment"
    ]["Variables"]
    return env


def role_id(poster: BufferedPoster) -> str:
    assert poster.function.role is not None
    return logical_id(poster.function.role)


@pytest.fixture(scope="module")
def ca_pem() -> str:
    return LocalCertificateAuthority.generate().ca_pem


class TestUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "core.bank.example/api",
            "http://core.bank.example/api",
            "ftp://core.bank.example",
            "https://",
            "https://core.bank.example/api?x=1",
        ],
    )
    def test_anything_but_https_is_refused(self, url: str) -> None:
        with pytest.raises(ValueError, match=r"PostingTarget.http: url must .*https://"):
            PostingTarget.http(url)

    @pytest.mark.parametrize(
        "url", ["https://poster:s3cret@core.bank.example/api", "https://t0ken@core.bank.example"]
    )
    def test_credentials_in_the_url_are_refused_and_not_echoed(self, url: str) -> None:
        with pytest.raises(ValueError, match="must not carry credentials") as refusal:
            PostingTarget.http(url)
        assert "s3cret" not in str(refusal.value)
        assert "t0ken" not in str(refusal.value)

    def test_an_unresolved_token_is_left_to_deploy_time(self) -> None:
        stack = bare_stack()
        parameter = cdk.CfnParameter(stack, "Url", type="String")
        poster = poster_in(stack, posting_target=PostingTarget.http(parameter.value_as_string))
        assert variables(stack, poster)["CORE_BANKING_URL"] == ref(parameter)

    def test_a_url_that_is_not_a_string_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="url must be a str"):
            PostingTarget.http(443)  # type: ignore[arg-type]


class TestNoLedger:
    def test_http_creates_no_ledger_table_and_grants_no_ledger(self) -> None:
        stack = bare_stack()
        poster = poster_in(stack, posting_target=PostingTarget.http(URL))
        template = Template.from_stack(stack)

        assert (poster.journal_table, poster.balances_table) == (None, None)
        assert poster.node.try_find_child("LedgerJournal") is None
        assert poster.node.try_find_child("LedgerBalances") is None
        template.resource_count_is("AWS::DynamoDB::GlobalTable", 1)  # idempotency only
        env = variables(stack, poster)
        assert not [name for name in env if name.startswith("LEDGER_")]
        assert env["POSTING_SYSTEM"] == "http"
        dynamodb_actions = {
            a for a in all_allowed_actions(template, role_id(poster)) if a.startswith("dynamodb:")
        }
        assert dynamodb_actions == {
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        }  # the idempotency records'

    def test_the_ledger_is_the_default(self) -> None:
        stack = bare_stack()
        poster = poster_in(stack)
        assert poster.posting_target == PostingTarget.ledger()
        assert poster.journal_table is not None
        assert poster.balances_table is not None

    @pytest.mark.parametrize("prop", ["ledger_key", "journal_table", "balances_table"])
    def test_ledger_props_are_refused_with_http(self, prop: str) -> None:
        stack = bare_stack()
        value: Any = kms.Key(stack, "LedgerKey")
        if prop != "ledger_key":
            value = cdk.aws_dynamodb.TableV2(
                stack,
                "Existing",
                partition_key=cdk.aws_dynamodb.Attribute(
                    name="pk", type=cdk.aws_dynamodb.AttributeType.STRING
                ),
            )
        with pytest.raises(ValueError, match=f"BufferedPoster: .*{prop}"):
            poster_in(stack, posting_target=PostingTarget.http(URL), **{prop: value})


class TestCredentials:
    def test_the_function_gets_the_secret_arn_and_may_read_that_secret_only(self) -> None:
        stack = bare_stack()
        secret_key = kms.Key(stack, "SecretKey", enable_key_rotation=True)
        secret = secretsmanager.Secret(stack, "Token", encryption_key=secret_key)
        poster = poster_in(
            stack,
            posting_target=PostingTarget.http(
                URL,
                credentials=CoreBankingCredentials(
                    secret, header_name="X-Api-Key", value_prefix=""
                ),
            ),
        )
        template = Template.from_stack(stack)
        env = variables(stack, poster)

        assert env["CORE_BANKING_SECRET_ARN"] == ref(secret)
        assert env["CORE_BANKING_CREDENTIALS_HEADER"] == "X-Api-Key"
        assert env["CORE_BANKING_CREDENTIALS_PREFIX"] == ""
        statements = role_statements(template, role_id(poster))
        secret_statements = [
            s for s in statements if any("secretsmanager:" in a for a in s.actions)
        ]
        assert [(s.actions, s.resources) for s in secret_statements] == [
            (("secretsmanager:GetSecretValue",), (ref(secret),))
        ]
        (decrypt,) = [
            s
            for s in statements
            if s.resources == ({"Fn::GetAtt": [logical_id(secret_key), "Arn"]},)
        ]
        assert decrypt.actions == ("kms:Decrypt",)
        raw = template.to_json()["Resources"]
        (policy,) = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in raw.values()
            if p["Type"] == "AWS::IAM::Policy"
            and {"Ref": role_id(poster)} in p["Properties"]["Roles"]
        ]
        (via,) = [
            s for s in policy if s["Resource"] == {"Fn::GetAtt": [logical_id(secret_key), "Arn"]}
        ]
        assert via["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1][0] == (
            "secretsmanager."
        )

    def test_an_imported_secret_by_name_is_granted_with_the_suffix_wildcard(self) -> None:
        stack = bare_stack()
        secret = secretsmanager.Secret.from_secret_name_v2(stack, "Token", "core/token")
        poster = poster_in(
            stack,
            posting_target=PostingTarget.http(URL, credentials=CoreBankingCredentials(secret)),
        )
        template = Template.from_stack(stack)
        (statement,) = [
            s
            for s in role_statements(template, role_id(poster))
            if "secretsmanager:GetSecretValue" in s.actions
        ]
        (resource,) = statement.resources
        assert stack.resolve(resource)["Fn::Join"][1][-1].endswith(":secret:core/token-??????")
        # No key of its own known here: no kms statement for it.
        assert not any(
            "kms:Decrypt" in s.actions
            and "secretsmanager" in str([stack.resolve(r) for r in s.resources])
            for s in role_statements(template, role_id(poster))
        )

    def test_no_credentials_no_secret_access(self) -> None:
        stack = bare_stack()
        poster = poster_in(stack, posting_target=PostingTarget.http(URL))
        template = Template.from_stack(stack)
        assert not any(
            a.startswith("secretsmanager:") for a in all_allowed_actions(template, role_id(poster))
        )
        assert "CORE_BANKING_SECRET_ARN" not in variables(stack, poster)

    @pytest.mark.parametrize("header", ["", "Authorization: Bearer", "X Api"])
    def test_a_header_name_that_is_no_header_name_is_refused(self, header: str) -> None:
        stack = bare_stack()
        secret = secretsmanager.Secret(stack, "Token")
        with pytest.raises(ValueError, match="header_name"):
            CoreBankingCredentials(secret, header_name=header)


class TestClientCertificate:
    def test_the_function_gets_the_secret_arn_and_may_read_that_secret_only(self) -> None:
        stack = bare_stack()
        certificate_key = kms.Key(stack, "CertificateKey", enable_key_rotation=True)
        certificate_secret = secretsmanager.Secret(
            stack, "ClientCertificate", encryption_key=certificate_key
        )
        poster = poster_in(
            stack,
            posting_target=PostingTarget.http(
                URL, client_certificate=CoreBankingClientCertificate(certificate_secret)
            ),
        )
        template = Template.from_stack(stack)
        env = variables(stack, poster)

        assert env["CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN"] == ref(certificate_secret)
        assert "CORE_BANKING_SECRET_ARN" not in env  # no token: mutual TLS alone
        statements = role_statements(template, role_id(poster))
        assert [
            (s.actions, s.resources)
            for s in statements
            if any(a.startswith("secretsmanager:") for a in s.actions)
        ] == [(("secretsmanager:GetSecretValue",), (ref(certificate_secret),))]
        raw = template.to_json()["Resources"]
        (policy,) = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in raw.values()
            if p["Type"] == "AWS::IAM::Policy"
            and {"Ref": role_id(poster)} in p["Properties"]["Roles"]
        ]
        (decrypt,) = [
            s
            for s in policy
            if s["Resource"] == {"Fn::GetAtt": [logical_id(certificate_key), "Arn"]}
        ]
        assert decrypt["Action"] == "kms:Decrypt"
        assert decrypt["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Join"][1][0] == (
            "secretsmanager."
        )

    def test_with_a_token_too_each_secret_is_read_by_reference(self) -> None:
        stack = bare_stack()
        token = secretsmanager.Secret(stack, "Token")
        certificate_secret = secretsmanager.Secret(stack, "ClientCertificate")
        poster = poster_in(
            stack,
            posting_target=PostingTarget.http(
                URL,
                credentials=CoreBankingCredentials(token),
                client_certificate=CoreBankingClientCertificate(certificate_secret),
            ),
        )
        env = variables(stack, poster)
        assert env["CORE_BANKING_SECRET_ARN"] == ref(token)
        assert env["CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN"] == ref(certificate_secret)
        readable = [
            resource
            for s in role_statements(Template.from_stack(stack), role_id(poster))
            if "secretsmanager:GetSecretValue" in s.actions
            for resource in s.resources
        ]
        assert sorted(map(str, readable)) == sorted(map(str, [ref(token), ref(certificate_secret)]))

    def test_without_one_nothing_about_it(self) -> None:
        stack = bare_stack()
        poster = poster_in(stack, posting_target=PostingTarget.http(URL))
        assert "CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN" not in variables(stack, poster)

    def test_a_secret_itself_is_a_type_error(self) -> None:
        stack = bare_stack()
        secret = secretsmanager.Secret(stack, "ClientCertificate")
        with pytest.raises(TypeError, match="CoreBankingClientCertificate"):
            PostingTarget.http(URL, client_certificate=secret)  # type: ignore[arg-type]


# Lambda allows 4 KB for all of a function's environment variables (names and values).
LAMBDA_ENVIRONMENT_LIMIT = 4 * 1024
# What a value resolved at deploy time (a table name, a secret ARN) may take at most, here.
RESOLVED_VALUE_ALLOWANCE = 256


def environment_size(env: Mapping[str, Any]) -> int:
    """The environment's size as Lambda counts it, a deploy-time value counted generously."""
    return sum(
        len(name) + (len(value) if isinstance(value, str) else RESOLVED_VALUE_ALLOWANCE)
        for name, value in env.items()
    )


def layer_files(stack: cdk.Stack, poster: BufferedPoster) -> dict[str, bytes]:
    """The files of the posting function's CA layer, as staged in the cloud assembly."""
    app = stack.node.root
    assert isinstance(app, cdk.App)
    directory = Path(app.synth().directory)
    resources = Template.from_stack(stack).to_json()["Resources"]
    layers = resources[logical_id(poster.function)]["Properties"]["Layers"]
    [layer_id] = [
        layer["Ref"] for layer in layers if layer["Ref"].startswith("PostingCoreBankingCa")
    ]
    key = resources[layer_id]["Properties"]["Content"]["S3Key"]
    asset = directory / f"asset.{key.removesuffix('.zip')}"
    return {
        str(path.relative_to(asset)): path.read_bytes()
        for path in sorted(asset.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def large_bundle() -> str:
    """A root and four intermediates with 3072-bit RSA keys: more than 6 KB of PEM."""
    pem = LocalCertificateAuthority.generate(intermediates=4, rsa_key_size=3072).ca_pem
    assert len(pem.encode()) > 6 * 1024
    return pem


class TestCaBundle:
    def test_a_bundle_known_at_synth_is_a_layer_file_the_function_is_pointed_at(
        self, ca_pem: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "bank-ca.pem"
        path.write_text(ca_pem)
        stack = bare_stack()
        poster = poster_in(
            stack, posting_target=PostingTarget.http(URL, ca_bundle=CaBundle.from_file(path))
        )
        env = variables(stack, poster)
        assert env["CORE_BANKING_CA_BUNDLE_FILE"] == "/opt/core-banking-ca/ca-bundle.pem"
        assert "CORE_BANKING_CA_BUNDLE" not in env
        assert layer_files(stack, poster) == {"core-banking-ca/ca-bundle.pem": ca_pem.encode()}

    def test_a_bundle_of_6_kb_synthesizes_and_the_environment_stays_under_4_kb(
        self, large_bundle: str
    ) -> None:
        stack = bare_stack()
        secret = secretsmanager.Secret(stack, "Token")
        poster = poster_in(
            stack,
            posting_target=PostingTarget.http(
                URL,
                credentials=CoreBankingCredentials(secret),
                ca_bundle=CaBundle.from_pem(large_bundle),
            ),
        )
        env = variables(stack, poster)
        assert environment_size(env) < LAMBDA_ENVIRONMENT_LIMIT, env
        assert not any("CERTIFICATE" in str(value) for value in env.values())
        assert layer_files(stack, poster) == {
            "core-banking-ca/ca-bundle.pem": large_bundle.encode()
        }

    def test_the_same_bundle_gives_the_same_layer_asset(self, ca_pem: str) -> None:
        """The asset is hashed by content: a synth elsewhere, or later, changes nothing."""
        keys = []
        for _ in range(2):
            stack = bare_stack()
            poster_in(stack, posting_target=PostingTarget.http(URL, ca_bundle=CaBundle(ca_pem)))
            resources = Template.from_stack(stack).to_json()["Resources"]
            keys += [
                r["Properties"]["Content"]["S3Key"]
                for lid, r in resources.items()
                if lid.startswith("PostingCoreBankingCa")
            ]
        assert len(keys) == 2
        assert keys[0] == keys[1]

    def test_the_bundle_written_at_synth_is_removed_once_staged(self, ca_pem: str) -> None:
        before = set(Path(tempfile.gettempdir()).glob("core-banking-ca-*"))
        stack = bare_stack()
        poster = poster_in(
            stack, posting_target=PostingTarget.http(URL, ca_bundle=CaBundle(ca_pem))
        )
        assert layer_files(stack, poster)  # staged into the cloud assembly
        assert set(Path(tempfile.gettempdir()).glob("core-banking-ca-*")) == before

    def test_with_asset_staging_disabled_the_source_is_kept(self, ca_pem: str) -> None:
        """SAM disables staging: the template then names the source directory itself."""
        app = make_app(
            **{"aws:cdk:disable-asset-staging": True, "aws:cdk:enable-asset-metadata": True}
        )
        stack = cdk.Stack(app, "Staged")
        poster_in(stack, posting_target=PostingTarget.http(URL, ca_bundle=CaBundle(ca_pem)))
        resources = Template.from_stack(stack).to_json()["Resources"]
        [layer] = [r for lid, r in resources.items() if lid.startswith("PostingCoreBankingCa")]
        source = Path(layer["Metadata"]["aws:asset:path"])
        try:
            assert (source / "core-banking-ca" / "ca-bundle.pem").read_text() == ca_pem
        finally:
            shutil.rmtree(source)

    def test_a_bundle_given_at_deploy_time_goes_into_the_environment(self) -> None:
        stack = bare_stack()
        parameter = cdk.CfnParameter(stack, "Ca", type="String")
        poster = poster_in(
            stack,
            posting_target=PostingTarget.http(
                URL, ca_bundle=CaBundle.from_pem(parameter.value_as_string)
            ),
        )
        env = variables(stack, poster)
        assert env["CORE_BANKING_CA_BUNDLE"] == {"Ref": "Ca"}
        assert "CORE_BANKING_CA_BUNDLE_FILE" not in env
        resources = Template.from_stack(stack).to_json()["Resources"]
        assert not [r for r in resources.values() if r["Type"] == "AWS::Lambda::LayerVersion"
                    and "CA bundle" in r["Properties"].get("Description", "")]  # fmt: skip

    def test_without_a_bundle_no_layer_and_no_setting(self) -> None:
        stack = bare_stack()
        poster = poster_in(stack, posting_target=PostingTarget.http(URL))
        env = variables(stack, poster)
        assert not {"CORE_BANKING_CA_BUNDLE", "CORE_BANKING_CA_BUNDLE_FILE"} & set(env)
        layers = Template.from_stack(stack).to_json()["Resources"][logical_id(poster.function)][
            "Properties"
        ]["Layers"]
        assert len(layers) == 1  # the dependencies

    @pytest.mark.parametrize(
        ("pem", "message"),
        [
            ("not a certificate", "no PEM certificate"),
            (
                "-----BEGIN CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n",
                "private key",
            ),
            ("-----BEGIN CERTIFICATE-----\nÄ\n", "ASCII"),
        ],
    )
    def test_what_is_no_bundle_is_refused(self, pem: str, message: str) -> None:
        with pytest.raises(ValueError, match=f"CaBundle: .*{message}"):
            CaBundle.from_pem(pem)


class TestConflict:
    @pytest.mark.parametrize("meaning", list(ConflictMeaning))
    def test_what_409_means_reaches_the_function(self, meaning: ConflictMeaning) -> None:
        stack = bare_stack()
        poster = poster_in(stack, posting_target=PostingTarget.http(URL, on_409=meaning))
        assert variables(stack, poster)["CORE_BANKING_409_MEANS"] == meaning.value

    def test_the_values_are_the_ones_the_function_reads(self) -> None:
        assert {m.value for m in ConflictMeaning} == {m.value for m in http_posting.ConflictMeaning}

    def test_a_string_is_refused(self) -> None:
        with pytest.raises(TypeError, match="ConflictMeaning"):
            PostingTarget.http(URL, on_409="already-posted")  # type: ignore[arg-type]


class TestBudget:
    def test_the_default_timeout_fits_a_batch_of_worst_cases(self) -> None:
        stack = bare_stack()
        poster = poster_in(stack, posting_target=PostingTarget.http(URL), batch_size=10)
        template = Template.from_stack(stack).to_json()["Resources"]
        worst = 10 * (3 * (3 + 1) + 0.2 + 0.4)
        timeout = template[logical_id(poster.function)]["Properties"]["Timeout"]
        assert timeout == math.ceil(worst) + 10
        assert template[logical_id(poster.queue)]["Properties"]["VisibilityTimeout"] == 6 * timeout
        env = variables(stack, poster)
        assert (
            env["CORE_BANKING_ATTEMPTS"],
            env["CORE_BANKING_TIMEOUT_SECONDS"],
            env["CORE_BANKING_CONNECT_TIMEOUT_SECONDS"],
            env["CORE_BANKING_BACKOFF_SECONDS"],
        ) == ("3", "3", "1", "0.2")

    def test_a_function_timeout_too_short_for_the_batch_is_refused(self) -> None:
        stack = bare_stack()
        target = PostingTarget.http(URL, attempts=3)
        with pytest.raises(ValueError, match=r"function_timeout 30 s is too short .*126\.0 s"):
            poster_in(stack, posting_target=target, function_timeout=Duration.seconds(30))

    def test_a_budget_that_fits_is_accepted_as_given(self) -> None:
        stack = bare_stack()
        target = PostingTarget.http(
            URL,
            attempts=2,
            request_timeout=Duration.seconds(2),
            connect_timeout=Duration.millis(500),
            backoff=Duration.millis(100),
        )
        # 5 x (2 x 2.5 + 0.1) = 25.5 s < 30 s
        poster = poster_in(
            stack, posting_target=target, batch_size=5, function_timeout=Duration.seconds(30)
        )
        template = Template.from_stack(stack).to_json()["Resources"]
        assert template[logical_id(poster.function)]["Properties"]["Timeout"] == 30

    def test_a_budget_beyond_lambdas_limit_is_refused(self) -> None:
        stack = bare_stack()
        target = PostingTarget.http(URL, attempts=10, request_timeout=Duration.seconds(30))
        with pytest.raises(ValueError, match="900 s"):
            poster_in(stack, posting_target=target)

    @pytest.mark.parametrize("attempts", [0, 11, True, "3"])
    def test_attempts_out_of_range_are_refused(self, attempts: Any) -> None:
        with pytest.raises(ValueError, match="attempts"):
            PostingTarget.http(URL, attempts=attempts)


class TestNetwork:
    @pytest.fixture(scope="class")
    @classmethod
    def placed(cls, ca_pem: str) -> tuple[cdk.Stack, BufferedPoster, Template]:
        app = bare_stack().node.root
        assert isinstance(app, cdk.App)
        stack = cdk.Stack(
            app,
            "Placed",
            env=cdk.Environment(account="111111111111", region="eu-west-1"),
        )
        vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
            ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ])  # fmt: skip
        poster = poster_in(
            stack,
            posting_target=PostingTarget.http(
                URL,
                # Its layer is checked by the packs below with the rest.
                ca_bundle=CaBundle.from_pem(ca_pem),
                network=CoreBankingNetwork(
                    vpc=vpc,
                    core_system=ec2.Peer.ipv4(CORE_CIDR),
                    subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
                    aws_endpoints=[ec2.Peer.prefix_list("pl-6ea54007")],
                ),
            ),
        )
        return stack, poster, Template.from_stack(stack)

    def test_the_function_runs_in_the_vpc_with_its_own_group(
        self, placed: tuple[cdk.Stack, BufferedPoster, Template]
    ) -> None:
        _, poster, template = placed
        assert poster.security_group is not None
        properties = template.to_json()["Resources"][logical_id(poster.function)]["Properties"]
        config = properties["VpcConfig"]
        assert config["SecurityGroupIds"] == [
            {"Fn::GetAtt": [logical_id(poster.security_group), "GroupId"]}
        ]
        assert len(config["SubnetIds"]) == 2

    def test_egress_is_443_to_the_core_system_and_the_endpoints_only(
        self, placed: tuple[cdk.Stack, BufferedPoster, Template]
    ) -> None:
        _, poster, template = placed
        assert poster.security_group is not None
        group_id = logical_id(poster.security_group)
        resources = template.to_json()["Resources"]
        group = resources[group_id]["Properties"]
        # Inline rules, and the ones CDK writes as resources of their own (prefix lists).
        rules = list(group["SecurityGroupEgress"]) + [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::EC2::SecurityGroupEgress"
            and r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
        ]
        egress = sorted(
            (
                rule.get("CidrIp") or rule.get("DestinationPrefixListId"),
                rule["FromPort"],
                rule["ToPort"],
            )
            for rule in rules
        )
        assert egress == [(CORE_CIDR, 443, 443), ("pl-6ea54007", 443, 443)]
        assert "SecurityGroupIngress" not in group

    def test_the_role_may_manage_the_network_interfaces(
        self, placed: tuple[cdk.Stack, BufferedPoster, Template]
    ) -> None:
        _, poster, template = placed
        actions = all_allowed_actions(template, role_id(poster))
        assert {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"} <= actions

    def test_the_packs_find_nothing_and_the_function_is_inside_a_vpc(
        self, placed: tuple[cdk.Stack, BufferedPoster, Template]
    ) -> None:
        stack, _, _ = placed
        for pack in (
            cdk_nag.AwsSolutionsChecks,
            cdk_nag.PCIDSS321Checks,
            cdk_nag.NIST80053R5Checks,
        ):
            report = pack().validate_scope(stack)
            flagged = [
                (v.rule_name, r.construct_path)
                for v in report.violations
                for r in v.violating_resources
                if "/Posting/" in (r.construct_path or "")
            ]
            assert flagged == [], (pack.__name__, flagged)


class TestCoreSystemPort:
    """The group opens the port the core system listens on, read from the URL."""

    @staticmethod
    def _egress_ports(url: str, port: int | None = None) -> set[int]:
        stack = bare_stack()
        vpc = ec2.Vpc.from_vpc_attributes(
            stack, "Vpc", vpc_id="vpc-0abc12345", availability_zones=["eu-west-1a"],
            private_subnet_ids=["subnet-0aa11bb22"],
        )  # fmt: skip
        network = CoreBankingNetwork(
            vpc=vpc, core_system=ec2.Peer.ipv4(CORE_CIDR), core_system_port=port
        )
        poster = poster_in(stack, posting_target=PostingTarget.http(url, network=network))
        assert poster.security_group is not None
        group = Template.from_stack(stack).to_json()["Resources"][
            logical_id(poster.security_group)
        ]["Properties"]
        return {rule["FromPort"] for rule in group["SecurityGroupEgress"]}

    def test_the_urls_port_is_the_one_opened(self) -> None:
        assert self._egress_ports("https://core.bank.example:8443/api") == {8443}
        assert self._egress_ports(URL) == {443}
        assert self._egress_ports(URL, 443) == {443}

    def test_a_port_that_contradicts_the_url_is_refused(self) -> None:
        with pytest.raises(ValueError, match="security group would block every call"):
            self._egress_ports("https://core.bank.example:8443/api", 443)

    @pytest.mark.parametrize("port", [0, 70000, "443", True])
    def test_a_port_must_be_a_tcp_port(self, port: object) -> None:
        with pytest.raises(ValueError, match="core_system_port"):
            CoreBankingNetwork(
                vpc=ec2.Vpc.from_vpc_attributes(
                    bare_stack(), "Vpc", vpc_id="vpc-0abc12345", availability_zones=["a"]
                ),
                core_system=ec2.Peer.ipv4(CORE_CIDR),
                core_system_port=port,  # type: ignore[arg-type]
            )


class TestDeprecatedForm:
    def test_posting_system_http_still_works_and_warns(self) -> None:
        stack = bare_stack()
        with pytest.warns(DeprecationWarning, match="posting_target"):
            poster = poster_in(stack, posting_system="http", core_banking_url=URL)
        assert poster.posting_target.http_settings is not None
        assert poster.posting_target.http_settings.url == URL
        assert variables(stack, poster)["CORE_BANKING_URL"] == URL

    def test_the_deprecated_form_is_validated_too(self) -> None:
        stack = bare_stack()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with pytest.raises(ValueError, match="https://"):
                poster_in(stack, posting_system="http", core_banking_url="http://core.example")

    def test_both_forms_at_once_are_refused(self) -> None:
        stack = bare_stack()
        with pytest.raises(ValueError, match="posting_target alone"):
            poster_in(stack, posting_target=PostingTarget.ledger(), posting_system="ledger")

    def test_a_string_target_is_a_type_error(self) -> None:
        stack = bare_stack()
        with pytest.raises(TypeError, match="PostingTarget"):
            poster_in(stack, posting_target="http")


class TestTheStackOverHttp:
    """``-c posting=http``: the stack the local demo runs with the HTTP target."""

    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls) -> PaymentPostingStack:
        config = StageConfig.from_dict("prod", stage_values("prod"))
        app = make_app(**{POSTING_CONTEXT_KEY: "http"})
        return PaymentPostingStack(app, "PaymentPosting-prod", config=config)

    def test_url_and_ca_are_parameters_and_the_token_a_secret(
        self, stack: PaymentPostingStack
    ) -> None:
        template = Template.from_stack(stack).to_json()
        assert set(template["Parameters"]) >= {"CoreBankingUrl", "CoreBankingCaBundle"}
        assert template["Parameters"]["CoreBankingUrl"]["AllowedPattern"].startswith("^https://")
        assert stack.core_banking_secret is not None
        env = variables(stack, stack.poster)
        assert env["CORE_BANKING_URL"] == {"Ref": "CoreBankingUrl"}
        assert env["CORE_BANKING_CA_BUNDLE"] == {"Ref": "CoreBankingCaBundle"}
        # A deploy-time bundle shares the function's 4 KB of environment: CloudFormation
        # refuses a longer one before anything is changed.
        parameter = template["Parameters"]["CoreBankingCaBundle"]
        assert parameter["MaxLength"] == CA_BUNDLE_ENVIRONMENT_LIMIT
        assert "CaBundle.from_file" in parameter["ConstraintDescription"]
        assert env["CORE_BANKING_SECRET_ARN"] == ref(stack.core_banking_secret)
        assert not [name for name in template["Outputs"] if name.startswith("Ledger")]

    @pytest.mark.parametrize(
        "pack", [cdk_nag.AwsSolutionsChecks, cdk_nag.PCIDSS321Checks, cdk_nag.NIST80053R5Checks]
    )
    def test_the_packs_find_nothing(
        self, stack: PaymentPostingStack, pack: type[cdk_nag.NagPack]
    ) -> None:
        report = pack().validate_scope(stack)
        found = {
            (v.rule_name, r.construct_path)
            for v in report.violations
            for r in v.violating_resources
        }
        assert found == set(), found

    def test_only_this_variant_acknowledges_the_network_question(
        self, stack: PaymentPostingStack
    ) -> None:
        """The construct leaves the question open (docs/adr/0011); the stack's HTTP variant
        answers it, on its poster alone, saying it sets no network placement."""
        metadata = stack.poster.function.node.metadata
        reasons = [str(entry.data) for entry in metadata if "LambdaInsideVPC" in str(entry.data)]
        assert reasons
        assert all("sets no network placement" in r for r in reasons)
        bare = bare_stack()
        poster = poster_in(bare, posting_target=PostingTarget.http(URL))
        assert not [e for e in poster.function.node.metadata if "LambdaInsideVPC" in str(e.data)]

    def test_the_default_variant_has_no_client_certificate(
        self, stack: PaymentPostingStack
    ) -> None:
        assert stack.client_certificate_secret is None
        assert "CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN" not in variables(stack, stack.poster)

    @pytest.mark.parametrize(
        ("context", "message"),
        [
            ({MTLS_CONTEXT_KEY: "true"}, "needs -c posting=http"),
            ({POSTING_CONTEXT_KEY: "http", MTLS_CONTEXT_KEY: "yes"}, "true or false"),
        ],
    )
    def test_mutual_tls_without_http_or_with_a_wrong_value_is_refused(
        self, context: dict[str, str], message: str
    ) -> None:
        config = StageConfig.from_dict("prod", stage_values("prod"))
        with pytest.raises(ValueError, match=message):
            PaymentPostingStack(make_app(**context), "PaymentPosting-prod", config=config)

    def test_an_unknown_posting_is_refused(self) -> None:
        config = StageConfig.from_dict("prod", stage_values("prod"))
        with pytest.raises(ValueError, match="ledger or http"):
            PaymentPostingStack(
                make_app(**{POSTING_CONTEXT_KEY: "ftp"}), "PaymentPosting-prod", config=config
            )


class TestTheStackOverMutualTls:
    """``-c posting=http -c coreBankingMtls=true``: the demo's variant with a client
    certificate."""

    @pytest.fixture(scope="class")
    @classmethod
    def stack(cls) -> PaymentPostingStack:
        config = StageConfig.from_dict("prod", stage_values("prod"))
        app = make_app(**{POSTING_CONTEXT_KEY: "http", MTLS_CONTEXT_KEY: "true"})
        return PaymentPostingStack(app, "PaymentPosting-prod", config=config)

    def test_the_certificate_is_a_secret_of_its_own_read_by_reference(
        self, stack: PaymentPostingStack
    ) -> None:
        template = Template.from_stack(stack).to_json()
        assert stack.client_certificate_secret is not None
        assert stack.core_banking_secret is not None
        env = variables(stack, stack.poster)
        assert env["CORE_BANKING_CLIENT_CERTIFICATE_SECRET_ARN"] == ref(
            stack.client_certificate_secret
        )
        assert env["CORE_BANKING_SECRET_ARN"] == ref(stack.core_banking_secret)
        assert "CoreBankingClientCertificateSecretArn" in template["Outputs"]

    @pytest.mark.parametrize(
        "pack", [cdk_nag.AwsSolutionsChecks, cdk_nag.PCIDSS321Checks, cdk_nag.NIST80053R5Checks]
    )
    def test_the_packs_find_nothing(
        self, stack: PaymentPostingStack, pack: type[cdk_nag.NagPack]
    ) -> None:
        report = pack().validate_scope(stack)
        found = {
            (v.rule_name, r.construct_path)
            for v in report.violations
            for r in v.violating_resources
        }
        assert found == set(), found
