"""Django's ASGI handler with each request's sync work on a reused thread, entered once.

Django's own handler gives every request a new thread (a fresh one-thread executor per
request, shut down at its end), and with sync middleware in the chain it crosses between the
event loop and that thread about seven times a request (request_started, the chain, back to the
loop for the async middleware, CSRF's process_view, the view, rendering, response.close). On the
history endpoint that was a third of the latency (py-spy on `bench/search_bench.py`).

This handler keeps Django's rule, that all sync code of one request runs on one thread (so the
request sees one database connection), but borrows that thread from a stack of idle one-thread
executors and runs the whole middleware chain, the view and rendering in one call to it.
Concurrency is as before: a request that finds no idle executor gets a new one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpRequest, HttpResponseBase

# Executors kept for reuse beyond this are shut down: a burst does not pin its threads forever.
MAX_IDLE_THREADS = 32


class ReusedThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        # Every middleware in settings can run sync, so the chain is one sync call.
        self.load_middleware(is_async=False)
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(1, thread_name_prefix="request")
        try:
            # Every thread-sensitive call of this request (signals, the chain, response.close)
            # goes to this executor; an interrupted call is awaited before the context exits.
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < MAX_IDLE_THREADS:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        return response
