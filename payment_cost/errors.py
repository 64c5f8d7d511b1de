"""The one error the cost model raises for input a user can fix (exit status 2)."""


class CostInputError(Exception):
    """A missing or unusable input: the message says what to do."""
