"""CDK constructs of the payment-posting pipeline and the stack that composes them."""

from payment_stack.alarms import AlarmThreshold, allow_alarms_to_publish
from payment_stack.buffered_poster import BufferedPoster
from payment_stack.config import StageConfig
from payment_stack.ingest_pipe import IngestPipe, StartingPosition
from payment_stack.nag import (
    acknowledge,
    acknowledge_in_packs,
    acknowledge_inline_policy,
    add_compliance_packs,
)
from payment_stack.payment_function import PaymentFunction
from payment_stack.posting_target import (
    CaBundle,
    ConflictMeaning,
    CoreBankingClientCertificate,
    CoreBankingCredentials,
    CoreBankingNetwork,
    PostingTarget,
)
from payment_stack.processors import EnrichmentProcessor, ScreeningOutcomes
from payment_stack.rules_engine import RulesEngine
from payment_stack.stack import PaymentPostingStack

__all__ = [
    "AlarmThreshold",
    "BufferedPoster",
    "CaBundle",
    "ConflictMeaning",
    "CoreBankingClientCertificate",
    "CoreBankingCredentials",
    "CoreBankingNetwork",
    "EnrichmentProcessor",
    "IngestPipe",
    "PaymentFunction",
    "PaymentPostingStack",
    "PostingTarget",
    "RulesEngine",
    "ScreeningOutcomes",
    "StageConfig",
    "StartingPosition",
    "acknowledge",
    "acknowledge_in_packs",
    "acknowledge_inline_policy",
    "add_compliance_packs",
    "allow_alarms_to_publish",
]
