"""The code of every payment-posting Lambda function: ``domain`` (the business logic, no AWS
wiring) and ``handlers`` (one module per function, the entry points the stack names).

One namespaced package so that installing the constructs adds no generic top-level names
(``payments``, ``handlers``) to anyone's environment; the folder that holds it, ``lambdas/``,
is what a function's code asset contains.
"""
