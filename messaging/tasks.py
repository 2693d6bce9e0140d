from __future__ import annotations

from celery import shared_task

from messaging import indexing, uploads


@shared_task(ignore_result=True, acks_late=True, max_retries=None)
def index_room(room_id: int) -> int:
    return indexing.run_scheduled(room_id)


@shared_task(ignore_result=True)
def index_sweep() -> int:
    return indexing.catch_up_all()


@shared_task(ignore_result=True, acks_late=True)
def make_thumbnail(upload_id: str) -> None:
    uploads.write_thumbnail(upload_id)


@shared_task(ignore_result=True)
def expire_uploads() -> int:
    return uploads.expire_unfinished()
