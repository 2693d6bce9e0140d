"""The lowest layer: helpers every app may import, and that import no app.

Errors in the contract's shape, blocking calls from async code, short-lived caches, metrics,
rate limits, pagination, the JSON renderer, time and id formats, and the one door to the
channel layer (`broadcast`).
"""
