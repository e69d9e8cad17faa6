"""Read-only relations linked only where the reader may follow the link.

Django's admin shows a read-only foreign key as a link to the related row's page whatever
the reader may open: a practice admin met the user behind an access event and the stored
files behind an instance as links that each answered "You are not allowed to do that".
Here such a field, read-only on the page, shows as plain text when its model's page is
closed to the reader; editable fields and superusers' pages are left as Django makes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import models
from django.http import HttpRequest

_as_text: dict[tuple[type[models.Model], str], Callable[[models.Model], str]] = {}


def _text_of(model: type[models.Model], name: str) -> Callable[[models.Model], str]:
    """The same callable each time for a field: Django matches read-only fields by identity."""
    key = (model, name)
    if key not in _as_text:

        def show(obj: models.Model) -> str:
            value = getattr(obj, name)
            return "-" if value is None else str(value)

        show.__name__ = name
        show.short_description = model._meta.get_field(name).verbose_name  # type: ignore[attr-defined]
        _as_text[key] = show
    return _as_text[key]


class RelationsTheReaderMayOpen:
    """ModelAdmin mixin: read-only relations to pages closed to the reader are plain text."""

    model: type[models.Model]
    admin_site: Any

    def _closed(self, request: HttpRequest, obj: models.Model | None) -> set[str]:
        """Relations of this model whose pages the reader may not open, read-only here."""
        closed = set()
        registry = self.admin_site._registry
        for field in self.model._meta.fields:
            related = registry.get(field.related_model) if field.is_relation else None
            if related is not None and not related.has_view_or_change_permission(request):
                closed.add(field.name)
        if not closed:
            return closed
        if obj is not None and not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            return closed  # a view-only page: every field is read-only
        readonly = super().get_readonly_fields(request, obj)  # type: ignore[misc]
        return closed & {f for f in readonly if isinstance(f, str)}

    def _mapped(self, names: Iterable[Any], closed: set[str], model: type[models.Model]):
        def one(name: Any) -> Any:
            if isinstance(name, (list, tuple)):
                return tuple(one(n) for n in name)
            return _text_of(model, name) if isinstance(name, str) and name in closed else name

        return [one(n) for n in names]

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None):
        fields = super().get_readonly_fields(request, obj)  # type: ignore[misc]
        return self._mapped(fields, self._closed(request, obj), self.model)

    def get_exclude(self, request: HttpRequest, obj: models.Model | None = None):
        excluded = list(super().get_exclude(request, obj) or [])  # type: ignore[misc]
        return [*excluded, *sorted(self._closed(request, obj))]

    def get_fieldsets(self, request: HttpRequest, obj: models.Model | None = None):
        closed = self._closed(request, obj)
        return [
            (title, {**options, "fields": self._mapped(options["fields"], closed, self.model)})
            for title, options in super().get_fieldsets(request, obj)  # type: ignore[misc]
        ]
