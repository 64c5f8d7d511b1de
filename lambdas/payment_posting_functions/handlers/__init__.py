"""Lambda handlers: thin adapters between AWS events and the ``domain`` package."""
