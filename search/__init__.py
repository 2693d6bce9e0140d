"""Search: the query language, the PostgreSQL index that answers it, and the indexer that follows
every room's changes into it (creating mention and reply notices on the way).

Above the message core: it reads the store and builds message payloads; the core never imports
it (services send `messaging.signals.room_messages_changed`, which `search.apps` connects).
"""
