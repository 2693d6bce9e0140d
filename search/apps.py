from django.apps import AppConfig


class SearchConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "search"

    def ready(self) -> None:
        # The message core knows nothing of search: it announces changes and asks for `?q=` answers
        # (the API's, and the admin's Messages page's) through these hooks, all filled here.
        from messaging import admin as message_admin
        from messaging import room_search
        from messaging.signals import room_messages_changed
        from search import selectors, tasks

        room_messages_changed.connect(tasks.on_room_messages_changed, dispatch_uid="search.tasks")
        room_search.provide(selectors.search_messages)
        message_admin.provide_index(selectors.staff_message_index)
