"""Domain of the payment-posting pipeline: records, lifecycle events and the rules over them.

Nothing in this package knows about Lambda events or CDK; handlers translate to and from it.
"""
