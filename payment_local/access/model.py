"""What the template says about access: roles and their policies, resource and key policies,
and which customer-managed key encrypts which resource.

Read after provisioning, so every ARN is the local one. Values the local runtime cannot
resolve (a ``Fn::If``, a policy outside the template) are listed in ``notes`` and evaluated to
the most restrictive outcome, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from payment_local.access.conditions import is_known_key, is_known_operator
from payment_local.access.policy import PolicyDocument, parse_document
from payment_local.intrinsics import Resolver, UnresolvableError

AWS_MANAGED_ALIASES = ("alias/aws/",)


@dataclass
class Role:
    logical_id: str
    arn: str
    trust: PolicyDocument | None = None
    policies: list[PolicyDocument] = field(default_factory=list)
    # None: no boundary. An empty list with boundary_unknown: a boundary we cannot read.
    boundary: list[PolicyDocument] | None = None

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


@dataclass
class AccessModel:
    account: str
    region: str
    partition: str = "aws"
    roles: dict[str, Role] = field(default_factory=dict)  # by ARN
    resource_policies: dict[str, list[PolicyDocument]] = field(default_factory=dict)
    key_policies: dict[str, PolicyDocument] = field(default_factory=dict)  # by key ARN
    # resource ARN (table, stream, queue, topic, bus, pipe) -> key ARN
    encryption: dict[str, str] = field(default_factory=dict)
    archive_keys: dict[str, str] = field(default_factory=dict)  # bus ARN -> archive key ARN
    secrets_by_name: dict[str, str] = field(default_factory=dict)  # secret name -> ARN
    notes: list[str] = field(default_factory=list)

    def role_named(self, name: str) -> Role | None:
        return next((r for r in self.roles.values() if r.name == name), None)

    def documents(self) -> Iterable[PolicyDocument]:
        for role in self.roles.values():
            yield from ([role.trust] if role.trust else [])
            yield from role.policies
            yield from role.boundary or []
        for documents in self.resource_policies.values():
            yield from documents
        yield from self.key_policies.values()

    def unknown_condition_keys(self) -> dict[str, list[str]]:
        """Condition keys (and operators) the local check cannot evaluate, with where."""
        found: dict[str, list[str]] = {}
        for document in self.documents():
            for statement in document.statements:
                for operator, block in statement.conditions.items():
                    for key in block:
                        if not is_known_key(key):
                            found.setdefault(key, []).append(document.source)
                        elif not is_known_operator(operator):
                            found.setdefault(f"{operator} (operator)", []).append(document.source)
        return found


def build_access_model(
    resources: Mapping[str, Mapping[str, Any]], resolver: Resolver
) -> AccessModel:
    env = resolver.environment
    model = AccessModel(account=env.account, region=env.region, partition=env.partition)
    reader = _Reader(resources, resolver, model)
    reader.read()
    return model


@dataclass
class _Reader:
    resources: Mapping[str, Mapping[str, Any]]
    resolver: Resolver
    model: AccessModel
    _managed: dict[str, PolicyDocument] = field(default_factory=dict)  # ARN -> document

    def read(self) -> None:
        by_type: dict[str, list[tuple[str, Any]]] = {}
        for logical_id, resource in self.resources.items():
            by_type.setdefault(resource["Type"], []).append((logical_id, resource))
        for logical_id, _ in by_type.get("AWS::IAM::ManagedPolicy", []):
            self._managed_policy(logical_id)
        for logical_id, _ in by_type.get("AWS::IAM::Role", []):
            self._role(logical_id)
        for kind, read in (
            ("AWS::IAM::Policy", self._policy),
            ("AWS::IAM::ManagedPolicy", self._attach_managed),
            ("AWS::KMS::Key", self._key),
            ("AWS::SQS::QueuePolicy", self._queue_policy),
            ("AWS::SNS::TopicPolicy", self._topic_policy),
            ("AWS::Lambda::Permission", self._permission),
            ("AWS::Events::EventBusPolicy", self._bus_policy),
            ("AWS::DynamoDB::GlobalTable", self._global_table),
            ("AWS::DynamoDB::Table", self._table),
            ("AWS::SQS::Queue", self._queue),
            ("AWS::SNS::Topic", self._topic),
            ("AWS::Events::EventBus", self._bus),
            ("AWS::Events::Archive", self._archive),
            ("AWS::Pipes::Pipe", self._pipe),
            ("AWS::SecretsManager::Secret", self._secret),
        ):
            for logical_id, _ in by_type.get(kind, []):
                read(logical_id)

    # -- helpers --------------------------------------------------------------------------

    def _props(self, logical_id: str, *skip: str) -> dict[str, Any] | None:
        """The resource's properties resolved, except ``skip`` (policy documents, which
        ``_document`` resolves statement by statement)."""
        raw = self.resources[logical_id].get("Properties", {})
        try:
            props: dict[str, Any] = self.resolver.resolve(
                {k: v for k, v in raw.items() if k not in skip}
            )
        except UnresolvableError as error:
            self.model.notes.append(f"{logical_id}: {error}; it is left out")
            return None
        props.update({k: raw[k] for k in skip if k in raw})
        return props

    def _document(self, logical_id: str, raw: Any, source: str) -> PolicyDocument:
        """A policy document, resolving each statement on its own: one the runtime cannot
        resolve (a ``Fn::If``) is left out and named in the notes, the rest still apply."""
        statements = raw.get("Statement", []) if isinstance(raw, dict) else []
        resolved = []
        for number, statement in enumerate(
            statements if isinstance(statements, list) else [statements]
        ):
            try:
                resolved.append(self.resolver.resolve(statement))
            except UnresolvableError as error:
                effect = statement.get("Effect", "Allow") if isinstance(statement, dict) else "?"
                self.model.notes.append(
                    f"{source}: statement {number} ({effect}) is left out: {error}"
                )
        return parse_document(source, {"Statement": resolved})

    def _attr(self, logical_id: str, name: str) -> str | None:
        value = self.resolver.attributes.get((logical_id, name))
        return str(value) if value is not None else None

    def _key_arn(self, identifier: Any) -> str | None:
        """A customer-managed key's ARN from a key id, ARN or alias (None: AWS managed)."""
        if not identifier:
            return None
        text = str(identifier)
        if text.startswith(AWS_MANAGED_ALIASES) or ":alias/aws/" in text:
            return None
        for (logical_id, attribute), value in self.resolver.attributes.items():
            if attribute in ("Arn", "KeyId") and value == text:
                arn = self._attr(logical_id, "Arn")
                if arn and ":kms:" in arn:
                    return arn
        if text.startswith("arn:"):
            return text
        return f"arn:{self.model.partition}:kms:{self.model.region}:{self.model.account}:key/{text}"

    # -- identities -----------------------------------------------------------------------

    def _managed_policy(self, logical_id: str) -> None:
        props = self._props(logical_id, "PolicyDocument")
        arn = self.resolver.refs.get(logical_id)
        if props is None or arn is None:
            return
        self._managed[str(arn)] = self._document(
            logical_id, props.get("PolicyDocument", {}), f"{logical_id} (AWS::IAM::ManagedPolicy)"
        )

    def _managed_document(self, arn: str, owner: str) -> PolicyDocument | None:
        if arn in self._managed:
            return self._managed[arn]
        # Imported here: it loads moto, which the rest of the model does not need.
        from payment_local.moto_internals import aws_managed_policy

        document = aws_managed_policy(arn)
        if document is not None:
            return parse_document(f"{arn} (AWS managed)", document)
        self.model.notes.append(
            f"{owner}: managed policy {arn} is not in the template nor a known AWS managed "
            "policy; it grants nothing locally"
        )
        return None

    def _role(self, logical_id: str) -> None:
        props = self._props(logical_id, "AssumeRolePolicyDocument", "Policies") or {}
        arn = self._attr(logical_id, "Arn") or ""
        role = Role(logical_id, arn)
        if "AssumeRolePolicyDocument" in props:
            role.trust = self._document(
                logical_id, props["AssumeRolePolicyDocument"], f"{logical_id} trust policy"
            )
        for inline in props.get("Policies", []):
            name = inline.get("PolicyName", "")
            role.policies.append(
                self._document(
                    logical_id,
                    inline.get("PolicyDocument", {}),
                    f"{logical_id} inline policy {name if isinstance(name, str) else ''}".strip(),
                )
            )
        for managed_arn in props.get("ManagedPolicyArns", []):
            document = self._managed_document(str(managed_arn), logical_id)
            if document is not None:
                role.policies.append(document)
        boundary = props.get("PermissionsBoundary")
        if boundary:
            document = self._managed_document(str(boundary), f"{logical_id} boundary")
            role.boundary = [document] if document else []
            if document is None:
                self.model.notes.append(
                    f"{logical_id}: permissions boundary {boundary} cannot be read, so it "
                    "allows nothing locally"
                )
        self.model.roles[arn] = role

    def _roles_named(self, names: Iterable[Any]) -> list[Role]:
        found = []
        for name in names:
            role = self.model.role_named(str(name).rsplit("/", 1)[-1])
            if role is not None:
                found.append(role)
        return found

    def _policy(self, logical_id: str) -> None:
        props = self._props(logical_id, "PolicyDocument")
        if props is None:
            return
        document = self._document(
            logical_id, props.get("PolicyDocument", {}), f"{logical_id} (AWS::IAM::Policy)"
        )
        for role in self._roles_named(props.get("Roles", [])):
            role.policies.append(document)

    def _attach_managed(self, logical_id: str) -> None:
        props = self._props(logical_id, "PolicyDocument")
        arn = self.resolver.refs.get(logical_id)
        if props is None or arn is None or str(arn) not in self._managed:
            return
        for role in self._roles_named(props.get("Roles", [])):
            if self._managed[str(arn)] not in role.policies:
                role.policies.append(self._managed[str(arn)])

    # -- resource and key policies --------------------------------------------------------

    def _add_resource_policy(self, arn: str, document: PolicyDocument) -> None:
        self.model.resource_policies.setdefault(arn, []).append(document)

    def _key(self, logical_id: str) -> None:
        props = self._props(logical_id, "KeyPolicy")
        arn = self._attr(logical_id, "Arn")
        if props is None or arn is None:
            return
        self.model.key_policies[arn] = self._document(
            logical_id, props.get("KeyPolicy", {}), f"{logical_id} key policy"
        )

    def _queue_policy(self, logical_id: str) -> None:
        props = self._props(logical_id, "PolicyDocument")
        if props is None:
            return
        urls_to_arns = {
            str(value): self._attr(lid, "Arn")
            for (lid, name), value in self.resolver.attributes.items()
            if name == "QueueUrl"
        }
        document = self._document(
            logical_id, props["PolicyDocument"], f"{logical_id} (queue policy)"
        )
        for url in props.get("Queues", []):
            arn = urls_to_arns.get(str(url))
            if arn:
                self._add_resource_policy(arn, document)

    def _topic_policy(self, logical_id: str) -> None:
        props = self._props(logical_id, "PolicyDocument")
        if props is None:
            return
        document = self._document(
            logical_id, props["PolicyDocument"], f"{logical_id} (topic policy)"
        )
        for arn in props.get("Topics", []):
            self._add_resource_policy(str(arn), document)

    def _bus_policy(self, logical_id: str) -> None:
        props = self._props(logical_id)
        if props is None:
            return
        name = props.get("EventBusName", "default")
        arn = self._bus_arn(str(name))
        if "Statement" in props:
            raw = {"Statement": [props["Statement"]]}
        elif "Policy" in props:
            raw = (
                props["Policy"]
                if isinstance(props["Policy"], dict)
                else json.loads(props["Policy"])
            )
        else:  # the legacy form: Action, Principal (an account) and Condition
            principal = props.get("Principal", "*")
            raw = {"Statement": [{
                "Effect": "Allow", "Action": props.get("Action", "events:PutEvents"),
                "Principal": "*" if principal == "*" else {"AWS": principal},
                "Resource": arn, **({"Condition": props["Condition"]} if "Condition" in props
                                    else {}),
            }]}  # fmt: skip
        self._add_resource_policy(arn, parse_document(f"{logical_id} (bus policy)", raw))

    def _permission(self, logical_id: str) -> None:
        props = self._props(logical_id)
        if props is None:
            return
        function = str(props["FunctionName"])
        arn = function if function.startswith("arn:") else self._function_arn(function)
        principal = str(props["Principal"])
        condition: dict[str, dict[str, str]] = {}
        if props.get("SourceArn"):
            condition["ArnLike"] = {"aws:SourceArn": str(props["SourceArn"])}
        if props.get("SourceAccount"):
            condition["StringEquals"] = {"aws:SourceAccount": str(props["SourceAccount"])}
        if props.get("PrincipalOrgID"):
            condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = str(
                props["PrincipalOrgID"]
            )
        statement = {
            "Effect": "Allow",
            "Action": props["Action"],
            "Principal": {"Service": principal}
            if principal.endswith(".amazonaws.com")
            else "*"
            if principal == "*"
            else {"AWS": principal},
            "Resource": [arn, f"{arn}:*"],
            **({"Condition": condition} if condition else {}),
        }
        self._add_resource_policy(
            arn, parse_document(f"{logical_id} (Lambda permission)", {"Statement": [statement]})
        )

    def _function_arn(self, name: str) -> str:
        env = self.model
        return f"arn:{env.partition}:lambda:{env.region}:{env.account}:function:{name}"

    def _bus_arn(self, name: str) -> str:
        if name.startswith("arn:"):
            return name
        env = self.model
        return f"arn:{env.partition}:events:{env.region}:{env.account}:event-bus/{name}"

    # -- encryption -----------------------------------------------------------------------

    def _encrypt(self, logical_id: str, key: Any, *attributes: str) -> None:
        key_arn = self._key_arn(key)
        if key_arn is None:
            return
        for attribute in attributes:
            arn = self._attr(logical_id, attribute)
            if arn:
                self.model.encryption[arn] = key_arn

    def _global_table(self, logical_id: str) -> None:
        props = self._props(logical_id) or {}
        if (props.get("SSESpecification") or {}).get("SSEType") != "KMS":
            return
        for replica in props.get("Replicas", []):
            key = (replica.get("SSESpecification") or {}).get("KMSMasterKeyId")
            self._encrypt(logical_id, key or "alias/aws/dynamodb", "Arn", "StreamArn")

    def _table(self, logical_id: str) -> None:
        sse = (self._props(logical_id) or {}).get("SSESpecification") or {}
        if sse.get("SSEEnabled") and sse.get("SSEType", "KMS") == "KMS":
            key = sse.get("KMSMasterKeyId") or "alias/aws/dynamodb"
            self._encrypt(logical_id, key, "Arn", "StreamArn")

    def _queue(self, logical_id: str) -> None:
        key = (self._props(logical_id) or {}).get("KmsMasterKeyId")
        self._encrypt(logical_id, key, "Arn")

    def _topic(self, logical_id: str) -> None:
        key = (self._props(logical_id) or {}).get("KmsMasterKeyId")
        self._encrypt(logical_id, key, "TopicArn")

    def _bus(self, logical_id: str) -> None:
        key = (self._props(logical_id) or {}).get("KmsKeyIdentifier")
        self._encrypt(logical_id, key, "Arn")

    def _pipe(self, logical_id: str) -> None:
        # A pipe's definition (its filter), encrypted with this key, which Pipes decrypts with
        # the pipe's role to match records.
        key = (self._props(logical_id) or {}).get("KmsKeyIdentifier")
        self._encrypt(logical_id, key, "Arn")

    def _secret(self, logical_id: str) -> None:
        key = (self._props(logical_id) or {}).get("KmsKeyId")
        self._encrypt(logical_id, key, "Id")
        arn = self._attr(logical_id, "Id")
        if arn:
            # A caller may name the secret instead of giving its ARN (with the random suffix).
            name = arn.split(":secret:", 1)[1].rsplit("-", 1)[0]
            self.model.secrets_by_name[name] = arn

    def _archive(self, logical_id: str) -> None:
        props = self._props(logical_id) or {}
        key_arn = self._key_arn(props.get("KmsKeyIdentifier"))
        if key_arn and props.get("SourceArn"):
            self.model.archive_keys[str(props["SourceArn"])] = key_arn
