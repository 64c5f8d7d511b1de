#!/usr/bin/env python3
"""The CDK app: one payment-posting stack for the stage named by ``-c stage=NAME``.

The stack is environment-agnostic (no account or region baked in), so one synthesized
template deploys anywhere and also drives the local runtime.
"""

from __future__ import annotations

import sys

import aws_cdk as cdk

from payment_stack import PaymentPostingStack, StageConfig
from payment_stack.nag import add_compliance_packs

app = cdk.App()
try:
    config = StageConfig.from_context(app)
    PaymentPostingStack(app, f"PaymentPosting-{config.name}", config=config)
except (ValueError, TypeError) as error:
    # A bad -c value or stage setting is the user's to fix: say what, without a traceback.
    sys.exit(f"app.py: {error}")
# Every synth is checked against the AWS Solutions, PCI DSS 3.2.1 and NIST 800-53 rev 5 packs;
# an unacknowledged finding of any fails it (docs/adr/0011-compliance-packs-at-synth.md).
add_compliance_packs(app)
app.synth()
