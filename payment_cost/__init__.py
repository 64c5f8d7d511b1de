"""What the pipeline costs, read from the synthesized template and a local run's activity.

``make cost`` (``python -m payment_cost``) prints dollars per million records written to the
transactions table; docs/cost.md has the formulas and every assumption, ADR 0025 the reasons.
"""
