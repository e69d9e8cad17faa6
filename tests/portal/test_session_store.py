"""Sessions read through the shared cache: the database stays the record."""

from __future__ import annotations

from importlib import import_module
from unittest import mock

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from portal.workspace import session_store
from portal.workspace.sessions import end_sessions_of
from tests.base import BaseTestCase


def _store(key: str | None = None):
    return import_module(settings.SESSION_ENGINE).SessionStore(key)


@override_settings(PORTAL_SESSION_CACHE=True)
class CachedSessionTestCase(TestCase):
    def setUp(self) -> None:
        cache.clear()
        self.addCleanup(cache.clear)
        store = _store()
        store["share_link"] = "abc"
        store.save(must_create=True)
        self.key = store.session_key

    def test_a_read_costs_no_query_once_cached(self) -> None:
        self.assertEqual(_store(self.key)["share_link"], "abc")
        with CaptureQueriesContext(connection) as queries:
            self.assertEqual(_store(self.key)["share_link"], "abc")
        self.assertEqual(queries.captured_queries, [])

    def test_a_deleted_session_is_gone_from_the_cache_too(self) -> None:
        _store(self.key).load()
        _store(self.key).delete()
        self.assertEqual(_store(self.key).load(), {})

    def test_a_change_is_seen_by_the_next_read(self) -> None:
        store = _store(self.key)
        store["share_link"] = "def"
        store.save()
        self.assertEqual(_store(self.key)["share_link"], "def")

    def test_a_cache_that_is_down_costs_speed_only(self) -> None:
        broken = mock.Mock(side_effect=ConnectionError("redis down"))
        with (
            mock.patch.object(cache, "get", broken),
            mock.patch.object(cache, "set", broken),
            self.assertLogs("portal.workspace.session_store", "WARNING"),
        ):
            self.assertEqual(_store(self.key)["share_link"], "abc")

    def test_an_expired_cached_copy_is_not_served(self) -> None:
        _store(self.key).load()
        Session.objects.filter(session_key=self.key).delete()
        cache.set(session_store.KEY_PREFIX + self.key, (0.0, {"share_link": "abc"}), 60)
        self.assertEqual(_store(self.key).load(), {})


@override_settings(PORTAL_SESSION_CACHE=True)
class EndSessionsTestCase(BaseTestCase):
    def test_a_deactivated_member_is_signed_out_despite_the_cache(self) -> None:
        cache.clear()
        self.login(self.bob)
        self.assertEqual(self.client.get("/").status_code, 200)
        end_sessions_of(self.bob.pk)
        self.assertEqual(self.client.get("/").status_code, 302)


class LaptopSessionTestCase(TestCase):
    def test_without_a_shared_cache_nothing_is_cached(self) -> None:
        store = _store()
        store["x"] = 1
        store.save(must_create=True)
        with CaptureQueriesContext(connection) as queries:
            _store(store.session_key).load()
        self.assertEqual(len(queries.captured_queries), 1)
