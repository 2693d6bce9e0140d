"""The message core: the MongoDB store, message services and selectors, payloads, body rendering,
the per-process page cache, and the REST endpoints of messages.

Above rooms and files; below search and realtime, which it never imports (messaging.signals and
messaging.room_search are how they hear from it).
"""
