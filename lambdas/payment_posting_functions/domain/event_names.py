"""Every event's ``source`` and ``detail-type``, defined once.

Kept apart from the event models (``domain.events``) and free of dependencies, so the CDK
constructs, the States Language substitutions, the local runtime's report, the tests and the
docs all import these names instead of writing them again.
"""

from __future__ import annotations

from enum import StrEnum


class EventSource(StrEnum):
    """The ``source`` of events on the bus, one per processor."""

    INGEST = "payments.ingest"
    SCREENING = "payments.screening"
    ENRICHMENT = "payments.enrichment"
    RULES = "payments.rules"
    POSTING = "payments.posting"
    # Decisions on transactions held for review, as a case tool or a person sends them.
    REVIEW = "payments.review"
    # Audit records of redrives and replays, put by the operating commands (payments-local).
    OPERATIONS = "payments.operations"


class EventName(StrEnum):
    """The ``detail-type`` of events on the bus."""

    TRANSACTION_AUTHORIZED = "TransactionAuthorized"
    DUPLICATE_FLAGGED = "DuplicateFlagged"
    TRANSACTION_QUARANTINED = "TransactionQuarantined"
    TRANSACTION_ENRICHED = "TransactionEnriched"
    FOREIGN_TRANSACTION_FOUND = "ForeignTransactionFound"
    MERCHANT_CATEGORY_WARNING = "MerchantCategoryWarning"
    TRANSACTION_REJECTED = "TransactionRejected"
    TRANSACTION_HELD = "TransactionHeld"
    TRANSACTION_APPROVED = "TransactionApproved"
    TRANSACTION_POSTED = "TransactionPosted"
    POSTING_FAILED = "PostingFailed"
    AUTHORIZATION_HELD = "AuthorizationHeld"
    CLEARING_MATCHED = "ClearingMatched"
    REVERSAL_APPLIED = "ReversalApplied"
    HOLD_EXPIRED = "HoldExpired"
    INQUIRY_COMPLETED = "InquiryCompleted"
    REVIEW_DECIDED = "ReviewDecided"
