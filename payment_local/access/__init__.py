"""The local access check: every call made on behalf of a template principal is authorized
against that principal's policies as synthesized, before moto serves it.

See docs/adr/0008-local-access-enforcement.md for what is checked and what is not.
"""
