"""The HTTP side: the client that calls the third-party APIs, token fetching and caching,
and the egress policy that decides which addresses may be called.

May import ``core`` only.
"""
