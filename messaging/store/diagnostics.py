"""How MongoDB plans the store's hot queries (a test proves none is a collection scan)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING

from messaging.store import connection
from messaging.store.documents import idem_key, unread_filter


def query_plans() -> dict[str, str]:
    """The winning plan's stages of each hot query, e.g. `FETCH>IXSCAN`."""
    messages = connection.messages()
    probes = {
        "history": messages.find({"room_id": 1, "seq": {"$gte": 1, "$lte": 50}}),
        "changes": messages.find({"room_id": 1, "version": {"$gt": 0, "$lte": 500}}),
        "idempotency": messages.find({"room_id": 1, "author_id": 1, "idem_key": idem_key("x")}),
        "thread": messages.find({"parent_id": ObjectId(), "seq": {"$gt": 0}}).sort("seq", ASCENDING).limit(50),
        "by_id": messages.find({"_id": ObjectId()}),
        "edits": connection.revisions().find({"message_id": ObjectId()}).sort("replaced_at", ASCENDING),
        "unread": messages.find(unread_filter(1, 1, 1000), {"author_id": 1, "deleted": 1, "_id": 0}),
        "heads": connection.counters().find({"_id": {"$in": [1, 2]}}),
    }
    return {name: _plan_stages(cursor.explain()) for name, cursor in probes.items()}


def _plan_stages(explained: dict[str, Any]) -> str:
    stages: list[str] = []
    node: Any = explained.get("queryPlanner", {}).get("winningPlan", {})
    while isinstance(node, dict) and node:
        stages.append(str(node.get("stage", "?")))
        node = node.get("inputStage") or node.get("queryPlan") or {}
    return ">".join(stages)
