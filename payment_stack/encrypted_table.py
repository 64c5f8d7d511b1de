"""A TableV2 encrypted with a customer-managed key, in an environment-agnostic stack.

``TableEncryptionV2.customer_managed_key`` refuses to render without a concrete region,
because TableV2 is a global table whose replicas are keyed by region. Our stack is
environment-agnostic on purpose (one template for every account, region and the local
runtime), so the key is set on the single replica with a property override instead; see
docs/adr/0003-customer-managed-key-on-tablev2.md.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct


def customer_key_table(
    scope: Construct, construct_id: str, *, encryption_key: kms.IKey, **props: Any
) -> dynamodb.ITableV2:
    """Create the table and return a view of it that knows its key.

    Every table of this project is on-demand with point-in-time recovery unless ``props``
    says otherwise, and a table that is kept when the stack goes (RETAIN, the production
    setting) also has deletion protection: a table of payments is not deleted by one API call.
    Grants made through the returned ``ITableV2`` include the KMS permissions the key needs,
    exactly as with a table created with ``customer_managed_key``.
    """
    table = dynamodb.TableV2(
        scope,
        construct_id,
        encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
        **{
            "billing": dynamodb.Billing.on_demand(),
            "point_in_time_recovery_specification": dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            "deletion_protection": props.get("removal_policy") == RemovalPolicy.RETAIN,
            **props,
        },
    )
    resource = table.node.default_child
    assert isinstance(resource, dynamodb.CfnGlobalTable)
    # SSESpecification at the table level says "KMS"; the key itself is per replica.
    resource.add_property_override(
        "Replicas.0.SSESpecification.KMSMasterKeyId", encryption_key.key_arn
    )
    return dynamodb.TableV2.from_table_attributes(
        scope,
        f"{construct_id}WithKey",
        table_name=table.table_name,
        table_stream_arn=table.table_stream_arn,
        encryption_key=encryption_key,
    )
