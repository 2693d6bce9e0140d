"""Child process for the concurrency tests: posts N messages from T threads straight into the store."""

from __future__ import annotations

import os
import sys
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from messaging import store  # noqa: E402
from messaging.rendering import RenderedBody  # noqa: E402

PLAIN = RenderedBody(html="", has_link=False, mentioned_user_ids=[], mentions_room=False)


def main() -> None:
    url, name, room_id, author_id, per_thread, threads = sys.argv[1:7]
    settings.MONGODB_URL = url
    settings.MONGODB_NAME = name

    def burst(thread_no: int) -> None:
        for i in range(int(per_thread)):
            store.insert_message(
                rendered=PLAIN,
                room_id=int(room_id),
                author_id=int(author_id),
                body=f"{author_id}-{thread_no}-{i}",
                now=timezone.now(),
                client_id=f"{thread_no}-{i}",
            )

    workers = [threading.Thread(target=burst, args=(t,)) for t in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
