"""Operating the stack: status, redrive and replay, against the local state or AWS.

The same code runs both ways; a *plane* (``planes``) says where names resolve and how a
message is handed back to what failed to take it.
"""
