"""Thin routers: inject a principal and a session, call one ``ledger`` function, return its schema.

Each router's prefix carries the API version itself (``V1``), so a route's own path is its full template: that is
what the latency metric labels requests with (FastAPI puts the route, not the include prefix, in the scope).
"""

V1 = "/v1"
