"""The Django admin's moderation of messages: a Messages page over MongoDB, and reports.

Messages live in MongoDB behind `messaging.store`, not in a Django model, so no ModelAdmin can
list them. `MessageAdmin` is a ModelAdmin-like set of three staff views instead (a list, one
message with its edit history, a deletion with its confirmation page), and `MessageAdmin.install`
hooks them into an AdminSite through the two methods that make a ModelAdmin part of the admin:
`get_urls` (its views, mounted before the site's catch-all as `admin:messaging_message_changelist`,
`..._change` and `..._delete`) and `get_app_list` (its line "Messages" under "Messaging" on the
index page, the app page and the sidebar). No table, proxy model or migration is involved.

Every read is bounded, so the page costs the same in a room of 100,000 messages as in one of 10:

- A room alone (`?room=` an id or a name) is read from the store like the API's history: the
  room's head, then one `seq` range of the `room_seq` index per page (`?before=<seq>` pages back),
  tombstones included.
- Everything else (every room, `?author=`, text `?q=`) is read from the search index, newest
  first on its `posted_at` indexes, then the page's documents by id from the store (one `$in`).
  The index belongs to the search app, above this one: it hands its reader over with
  `provide_index` when Django starts, as it does for `messaging.room_search`. The index holds
  live messages once the indexing task has run; the store decides what is shown.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from django.apps import apps as django_apps
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.html import format_html

from accounts.models import User
from core.errors import ApiError
from files.selectors import attachment_payloads
from messaging import store
from messaging.models import Report, ReportStatus
from messaging.reports import report_resolve
from messaging.services import message_delete
from rooms.admin import RoomFilter, staff_user
from rooms.models import Room

PAGE_SIZE = 50
HISTORY_PAGE = 50
EXCERPT = 120
MAX_FILTER_LENGTH = 500


# --- the search index, provided by the search app --------------------------------------------


class MessageIndex(Protocol):
    """Up to `limit` (message id, posted_at) of indexed messages, newest first, older than
    `before`, in every room (the caller is staff) or in `room_id`, by `author_id`, matching the
    search text `q` (the API's query language; "" matches all). Raises ApiError for a bad `q`."""

    def __call__(
        self,
        *,
        user: User,
        q: str,
        room_id: int | None,
        author_id: int | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[tuple[str, datetime]]: ...


_index: MessageIndex | None = None


def provide_index(index: MessageIndex) -> None:
    """The search app's AppConfig.ready() hands its reader over here."""
    global _index
    _index = index


def index_provided() -> bool:
    return _index is not None


# --- the Messages page -------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRow:
    message: store.StoredMessage
    room_name: str
    author_name: str
    excerpt: str
    reaction_count: int


@dataclass
class Listing:
    rows: list[MessageRow]
    older: str | None  # the query string of the next (older) page
    source: str  # "store" or "index": what the page was read from


def excerpt(message: store.StoredMessage, length: int = EXCERPT) -> str:
    if message.deleted:
        return "(deleted)"
    text = " ".join(message.body.split())
    if not text and message.attachments:
        return f"({len(message.attachments)} file{'s' if len(message.attachments) != 1 else ''})"
    return text if len(text) <= length else text[: length - 1] + "…"


def _clean(raw: str | None) -> str:
    return (raw or "").strip()[:MAX_FILTER_LENGTH]


def _positive(raw: str | None) -> int | None:
    text = (raw or "").strip()
    if not text or len(text) > 18 or not (text.isascii() and text.isdigit()) or int(text) < 1:
        return None
    return int(text)


def encode_cursor(posted_at: datetime, message_id: str) -> str:
    return base64.urlsafe_b64encode(f"{posted_at.isoformat()}|{message_id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str | None) -> tuple[datetime, str] | None:
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        moment, message_id = text.split("|", 1)
        posted_at = datetime.fromisoformat(moment)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if posted_at.tzinfo is None or not re.fullmatch(r"[0-9a-f]{24}", message_id):
        return None
    return posted_at, message_id


class MessageAdmin:
    """Staff views of the messages in MongoDB; see the module docstring for how they are hooked in."""

    app_label = "messaging"
    model_name = "message"
    verbose_name = "message"
    verbose_name_plural = "messages"

    def __init__(self, site: admin.AdminSite) -> None:
        self.site = site

    # --- wiring ---

    @classmethod
    def install(cls, site: admin.AdminSite) -> MessageAdmin:
        """Add the views to `site`'s URLs and the "Messages" line to its app list."""
        views = cls(site)
        site_urls = site.get_urls
        site_app_list = site.get_app_list

        def get_urls() -> list[URLResolver | URLPattern]:
            return [*views.get_urls(), *site_urls()]  # before the site's catch-all 404 view

        def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[Any]:
            return views.add_to_app_list(request, site_app_list(request, app_label), app_label)

        site.get_urls = get_urls  # type: ignore[method-assign]
        site.get_app_list = get_app_list  # type: ignore[method-assign]
        return views

    def url_name(self, view: str) -> str:
        return f"{self.app_label}_{self.model_name}_{view}"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        wrap = self.site.admin_view  # staff only (others go to the login page), never cached, CSRF-checked
        prefix = f"{self.app_label}/{self.model_name}/"
        return [
            path(prefix, wrap(self.changelist_view), name=self.url_name("changelist")),
            path(f"{prefix}<str:message_id>/change/", wrap(self.change_view), name=self.url_name("change")),
            path(f"{prefix}<str:message_id>/delete/", wrap(self.delete_view), name=self.url_name("delete")),
        ]

    def add_to_app_list(self, request: HttpRequest, app_list: list[Any], app_label: str | None) -> list[Any]:
        """Every staff member may read and delete messages (as the API lets staff), so the line
        shows for anyone the admin lets in, with the app's own models or without them."""
        if app_label not in (None, self.app_label) or not self.site.has_permission(request):
            return app_list
        entry = {
            "model": None,
            "name": self.verbose_name_plural.capitalize(),
            "object_name": "Message",
            "perms": {"add": False, "change": False, "delete": False, "view": True},
            "admin_url": reverse(f"{self.site.name}:{self.url_name('changelist')}", current_app=self.site.name),
            "add_url": None,
            "view_only": True,
        }
        app = next((a for a in app_list if a["app_label"] == self.app_label), None)
        if app is None:
            app = {
                "name": django_apps.get_app_config(self.app_label).verbose_name,
                "app_label": self.app_label,
                "app_url": reverse(
                    f"{self.site.name}:app_list", kwargs={"app_label": self.app_label}, current_app=self.site.name
                ),
                "has_module_perms": True,
                "models": [],
            }
            app_list = sorted([*app_list, app], key=lambda a: a["name"].lower())
        app["models"] = sorted([*app["models"], entry], key=lambda m: m["name"])
        return app_list

    def context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {
            **self.site.each_context(request),
            "app_label": self.app_label,
            "app_name": django_apps.get_app_config(self.app_label).verbose_name,
            "changelist_url": reverse(f"{self.site.name}:{self.url_name('changelist')}"),
            **extra,
        }

    # --- the list ---

    def changelist_view(self, request: HttpRequest) -> HttpResponse:
        room_text, author_text, q = (_clean(request.GET.get(name)) for name in ("room", "author", "q"))
        errors: list[str] = []
        room_choices: list[Room] = []
        room, author = None, None
        if room_text:
            room, room_choices = self.find_room(room_text)
            if room is None and not room_choices:
                errors.append(f"No room is named or numbered “{room_text}”.")
        if author_text:
            author = User.objects.filter(username__iexact=author_text).first()
            if author is None:
                errors.append(f"No user is called “{author_text}”.")
        filters = {k: v for k, v in {"room": room_text, "author": author_text, "q": q}.items() if v}
        listing = Listing(rows=[], older=None, source="index")
        if not errors and not room_choices:
            try:
                listing = self.listing(request, room=room, author=author, q=q, filters=filters)
            except ApiError as error:
                errors.append(error.detail)
        context = self.context(
            request,
            title="Messages",
            subtitle=None,
            listing=listing,
            errors=errors,
            room=room,
            author=author,
            room_choices=room_choices,
            filters={"room": room_text, "author": author_text, "q": q},
            has_filters=bool(filters),
            filter_forms=[
                self.filter_form(filters, "room", "room", "Room id or name"),
                self.filter_form(filters, "author", "author", "Username"),
            ],
            search_hidden=[(k, v) for k, v in filters.items() if k != "q"],
            newest_url="?" + urlencode(filters),
            page_size=PAGE_SIZE,
        )
        return TemplateResponse(request, "admin/messaging/message/change_list.html", context)

    def filter_form(self, filters: dict[str, str], name: str, title: str, placeholder: str) -> dict[str, Any]:
        """What templates/admin/messaging/room_filter.html shows (as for rooms.admin.RoomFilter)."""
        others = {k: v for k, v in filters.items() if k != name}
        return {
            "title": title,
            "spec": {"parameter_name": name, "placeholder": placeholder, "hidden_params": list(others.items())},
            "choices": [
                {"selected": name in filters, "query_string": "?" + urlencode(others), "display": filters.get(name, "")}
            ],
        }

    @staticmethod
    def find_room(text: str) -> tuple[Room | None, list[Room]]:
        """The room with this id, or the one with this name (case ignored); several of that name: choices."""
        rid = _positive(text)
        if rid is not None:
            found = Room.objects.filter(pk=rid).first()
            if found is not None:
                return found, []
        named = list(Room.objects.filter(name__iexact=text).order_by("pk")[:20])
        if len(named) == 1:
            return named[0], []
        return None, named

    def listing(
        self, request: HttpRequest, *, room: Room | None, author: User | None, q: str, filters: dict[str, str]
    ) -> Listing:
        """One page, newest first; `filters` (the non-empty of room, author and q) go into the next page's link."""
        if room is not None and author is None and not q:
            # A room alone: the store's own order, one bounded `seq` range of `room_seq` a page.
            head = store.room_heads([room.pk]).get(room.pk)
            last_seq = head.last_seq if head else 0
            before = _positive(request.GET.get("before"))
            upper = last_seq if before is None else min(last_seq, before - 1)
            first = max(1, upper - PAGE_SIZE + 1)
            found = store.messages_by_seq(room.pk, first, upper) if upper >= 1 else []
            older = urlencode({**filters, "before": first}) if first > 1 and upper >= 1 else None
            return Listing(rows=self.rows(reversed(found)), older=older, source="store")
        if _index is None:
            raise ApiError(
                "Listing every room, an author's messages or a text search needs the search index, "
                "and no search app provides it (INSTALLED_APPS needs `search`). Filter by a room alone."
            )
        position = decode_cursor(request.GET.get("cursor"))
        rows = _index(
            user=staff_user(request),
            q=q,
            room_id=room.pk if room is not None else None,
            author_id=author.pk if author is not None else None,
            before=position,
            limit=PAGE_SIZE + 1,
        )
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        found = store.get_messages([message_id for message_id, _ in rows])
        older = urlencode({**filters, "cursor": encode_cursor(rows[-1][1], rows[-1][0])}) if more and rows else None
        return Listing(rows=self.rows(found), older=older, source="index")

    @staticmethod
    def rows(found: Iterable[store.StoredMessage]) -> list[MessageRow]:
        batch = list(found)
        rooms = Room.objects.in_bulk({m.room_id for m in batch})
        people = dict(User.objects.filter(pk__in={m.author_id for m in batch}).values_list("pk", "username"))
        return [
            MessageRow(
                message=m,
                room_name=rooms[m.room_id].name if m.room_id in rooms else f"room {m.room_id}",
                author_name=people.get(m.author_id, f"user {m.author_id}"),
                excerpt=excerpt(m),
                reaction_count=sum(len(r.user_ids) for r in m.reactions),
            )
            for m in batch
        ]

    # --- one message ---

    def get_message(self, message_id: str) -> store.StoredMessage:
        message = store.get_message(message_id)
        if message is None:
            raise Http404("No such message.")
        return message

    def change_view(self, request: HttpRequest, message_id: str) -> HttpResponse:
        message = self.get_message(message_id)
        room = Room.objects.filter(pk=message.room_id).first()
        reaction_people = {u for r in message.reactions for u in r.user_ids}
        people = User.objects.in_bulk({message.author_id, *reaction_people})
        files = attachment_payloads(message.attachments)
        after = request.GET.get("after") or None
        revisions = store.revisions_of(message.id, after=after, limit=HISTORY_PAGE + 1)
        if revisions is None:  # not a key this page gave
            revisions, after = store.revisions_of(message.id, limit=HISTORY_PAGE + 1) or [], None
        more_history = len(revisions) > HISTORY_PAGE
        revisions = revisions[:HISTORY_PAGE]
        parent = store.get_message(message.parent_id) if message.parent_id else None
        context = self.context(
            request,
            title=f"Message {message.id}",
            subtitle=None,
            message=message,
            room=room,
            author=people.get(message.author_id),
            parent=parent,
            attachments=[
                files.get(a) or {"id": a, "name": "(withdrawn or unfinished upload)"} for a in message.attachments
            ],
            reactions=[
                {
                    "emoji": r.emoji,
                    "count": len(r.user_ids),
                    "people": ", ".join(people[u].username if u in people else f"user {u}" for u in r.user_ids),
                }
                for r in message.reactions
            ],
            revisions=revisions,
            history_paged=after is not None,
            more_history_url="?" + urlencode({"after": revisions[-1].key}) if more_history and revisions else None,
            reports=Report.objects.filter(message_id=message.id).count(),
            reports_url=reverse(f"{self.site.name}:messaging_report_changelist") + "?" + urlencode({"q": message.id}),
            audit_url=reverse(f"{self.site.name}:rooms_auditentry_changelist")
            + "?"
            + urlencode({"message_id": message.id}),
            delete_url=reverse(f"{self.site.name}:{self.url_name('delete')}", args=[message.id]),
        )
        return TemplateResponse(request, "admin/messaging/message/change_form.html", context)

    def delete_view(self, request: HttpRequest, message_id: str) -> HttpResponseBase:
        """GET: the confirmation page; POST (CSRF-checked by admin_view): the deletion through the
        service, which leaves a tombstone and, for someone else's message, an audit entry."""
        message = self.get_message(message_id)
        detail_url = reverse(f"{self.site.name}:{self.url_name('change')}", args=[message.id])
        if message.deleted:
            messages.info(request, "This message was deleted already.")
            return HttpResponseRedirect(detail_url)
        if request.method == "POST":
            try:
                message_delete(user=staff_user(request), message_id=message.id)
            except ApiError as error:
                messages.error(request, error.detail)
            else:
                messages.success(
                    request, "The message was deleted: it is a tombstone now, and the audit log says who did it."
                )
            return HttpResponseRedirect(detail_url)
        room = Room.objects.filter(pk=message.room_id).first()
        context = self.context(
            request,
            title="Are you sure?",
            subtitle=None,
            message=message,
            room=room,
            author=User.objects.filter(pk=message.author_id).first(),
            excerpt=excerpt(message, 500),
            detail_url=detail_url,
        )
        return TemplateResponse(request, "admin/messaging/message/delete_confirmation.html", context)


message_views = MessageAdmin.install(admin.site)


def message_admin_link(message_id: str, text: str | None = None) -> str:
    if not message_id:
        return "-"
    url = reverse(f"admin:{message_views.url_name('change')}", args=[message_id])
    return format_html('<a href="{}">{}</a>', url, text or message_id)


# --- reports -----------------------------------------------------------------------------------


class ReportChangeList(ChangeList):
    """Reads the page's reported messages (one store query) and their authors (one SQL query)
    for the whole page, not per row."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        page = list(self.result_list)  # evaluates the page once; the template iterates the same objects
        found = {m.id: m for m in store.get_messages(list({r.message_id for r in page}))}
        names = dict(User.objects.filter(pk__in={m.author_id for m in found.values()}).values_list("pk", "username"))
        for report in page:
            message = found.get(report.message_id)
            report.__dict__[_SEEN] = (message, names.get(message.author_id, "") if message else "")


_SEEN = "_reported_message"  # (the stored message or None, its author's username) on a Report


def _reported(report: Report) -> tuple[store.StoredMessage | None, str]:
    if _SEEN not in report.__dict__:  # the change page: one report
        message = store.get_message(report.message_id)
        name = User.objects.filter(pk=message.author_id).values_list("username", flat=True).first() if message else ""
        report.__dict__[_SEEN] = (message, name or "")
    seen: tuple[store.StoredMessage | None, str] = report.__dict__[_SEEN]
    return seen


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Reports are filed by members and resolved by the actions, through `report_resolve` (which
    writes the audit entry and, for "Delete the message", deletes through `message_delete`). Nothing
    else changes one: no add, edit or delete here."""

    list_display = ("created_at", "status", "reported_message", "reason_excerpt", "room", "reporter")
    list_display_links = ("created_at",)  # the message column links to the message itself
    list_filter = ("status", RoomFilter)
    list_select_related = ("room", "reporter")
    search_fields = ("=message_id", "reporter__username", "reason")
    search_help_text = "A message id, the reporter's username, or words of the reason."
    ordering = ("-created_at",)  # the admin adds -pk to break ties
    actions = ("dismiss", "delete_messages")
    fields = (
        "room",
        "reported_message",
        "message_id",
        "reporter",
        "reason",
        "created_at",
        "status",
        "resolved_by",
        "resolved_at",
    )
    readonly_fields = fields

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ReportChangeList

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The report's page offers the two actions as buttons while it is open."""
        report = self.get_object(request, object_id)
        can_resolve = report is not None and report.status == ReportStatus.OPEN and self.has_resolve_permission(request)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "can_resolve": can_resolve})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Report | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Report | None = None) -> bool:
        return False

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        """Resolving is the one change a report gets: it takes the change permission (superusers have it)."""
        return request.user.has_perm("messaging.change_report")

    @admin.display(description="message")
    def reported_message(self, report: Report) -> str:
        message, author = _reported(report)
        if message is None:
            return "(gone)"
        return format_html(
            '{} <span class="quiet">by {}</span>',
            message_admin_link(report.message_id, excerpt(message, 70)),
            author or f"user {message.author_id}",
        )

    @admin.display(description="reason")
    def reason_excerpt(self, report: Report) -> str:
        return report.reason if len(report.reason) <= 70 else report.reason[:69] + "…"

    @admin.action(description="Dismiss the selected reports", permissions=["resolve"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        self.resolve(request, queryset, "dismiss")

    @admin.action(description="Delete the reported messages", permissions=["resolve"])
    def delete_messages(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        self.resolve(request, queryset, "delete_message")

    def resolve(self, request: HttpRequest, queryset: QuerySet[Report], action: str) -> None:
        actor = staff_user(request)
        chosen = list(queryset.order_by("pk").values_list("pk", "status"))
        done, already = 0, 0
        for pk, status in chosen:
            if status != ReportStatus.OPEN:
                already += 1
                continue
            # Deleting a message closes every open report of it: those are done, not errors.
            if not Report.objects.filter(pk=pk, status=ReportStatus.OPEN).exists():
                done += 1
                continue
            try:
                report_resolve(actor=actor, report_id=pk, action=action)
            except ApiError as error:
                self.message_user(request, f"Report {pk}: {error.detail}", messages.ERROR)
            else:
                done += 1
        if done:
            verb = "dismissed" if action == "dismiss" else "resolved by deleting the message"
            self.message_user(request, f"{done} report{'s' if done != 1 else ''} {verb}.", messages.SUCCESS)
        if already:
            self.message_user(
                request, f"{already} report{'s were' if already != 1 else ' was'} resolved already.", messages.WARNING
            )
