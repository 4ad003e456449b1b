"""The HTTP side: the client that calls the third-party APIs (and signs requests), token
fetching, JWT signing and caching, and the egress policy that decides which addresses may be called.

May import ``core`` only.
"""
