"""Child process for the concurrency tests: posts N messages from T threads straight into the store.

    post_burst.py URL DB ROOM AUTHOR PER_THREAD THREADS [--acks]

With `--acks` it prints `ack <client_id> <seq>` once each post has returned. At the end it prints
`batches=<n>`: the group commits its posts took (messaging.store.group_commit)."""

from __future__ import annotations

import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402

from messaging import store  # noqa: E402
from messaging.rendering import RenderedBody  # noqa: E402

PLAIN = RenderedBody(html="", has_link=False, mentioned_user_ids=[], mentions_room=False)


def main() -> None:
    url, name, room_id, author_id, per_thread, threads = sys.argv[1:7]
    print_acks = "--acks" in sys.argv[7:]
    settings.MONGODB_URL = url
    settings.MONGODB_NAME = name
    printing = threading.Lock()

    def burst(thread_no: int) -> None:
        for i in range(int(per_thread)):
            message, _, _ = store.insert_message(
                rendered=PLAIN,
                room_id=int(room_id),
                author_id=int(author_id),
                body=f"{author_id}-{thread_no}-{i}",
                now=timezone.now(),
                client_id=f"{thread_no}-{i}",
            )
            if print_acks:
                with printing:
                    print(f"ack {message.client_id} {message.seq}", flush=True)

    workers = [threading.Thread(target=burst, args=(t,)) for t in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(f"batches={int(REGISTRY.get_sample_value('chat_store_batch_changes_count') or 0)}", flush=True)


if __name__ == "__main__":
    main()
