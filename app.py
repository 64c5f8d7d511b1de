#!/usr/bin/env python3
"""The CDK app: one payment-posting stack for the stage named by ``-c stage=NAME``.

The stack is environment-agnostic (no account or region baked in), so one synthesized
template deploys anywhere and also drives the local runtime.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from payment_stack import PaymentPostingStack, StageConfig

app = cdk.App()
config = StageConfig.from_context(app)
PaymentPostingStack(app, f"PaymentPosting-{config.name}", config=config)
# Every synth is checked against the AWS Solutions rules; an unacknowledged finding fails it.
cdk.Validations.of(app).add_plugins(AwsSolutionsChecks())
app.synth()
