"""Ledger v2 (issue 11): immutable transfers, two-phase transfers, balance constraints, and
no item that every posting writes. ``model`` holds the types, ``reference`` the in-memory
oracle, ``dynamodb`` the adapter; ``house`` says which accounts are house accounts and how
their legs are sharded."""
