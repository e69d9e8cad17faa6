"""A hostile database administrator edits the access history in SQL; verify_audit names it.

Every tampering goes through raw SQL with the append-only triggers switched off, as the owner
of the tables could; the chain key and the checkpoint key stay outside the database.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import TestCase, override_settings

import audit
from audit import checkpoints
from audit.models import AccessEvent, Action, ChainHead

EVENT_COLUMNS = [f.column for f in AccessEvent._meta.concrete_fields if f.column != "id"]


def run_verify(*args: str) -> tuple[int, str]:
    """Run `manage.py verify_audit`; return its exit code and everything it printed."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue() + err.getvalue()


def raw(sql: str, params: tuple = ()) -> None:
    """Execute SQL as the tables' owner would, with the append-only triggers switched off."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_accessevent DISABLE TRIGGER USER")
            cursor.execute("ALTER TABLE audit_chainhead DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_accessevent ENABLE TRIGGER USER")
            cursor.execute("ALTER TABLE audit_chainhead ENABLE TRIGGER USER")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


class TamperingTestCase(TestCase):
    def setUp(self) -> None:
        prefix = f"audit-checkpoints-test-{uuid.uuid4().hex}"
        override = override_settings(PORTAL_AUDIT_CHECKPOINT_PREFIX=prefix)
        override.enable()
        self.addCleanup(override.disable)
        folder = Path(settings.STORAGES["vault"]["OPTIONS"]["location"]) / prefix
        self.addCleanup(shutil.rmtree, folder, True)
        self.events = [
            audit.record(Action.SEARCH, detail={"n": i, "reason": "ü"}) for i in range(5)
        ]

    @pytest.mark.hipaa("164.312(b)", "164.312(c)(2)")
    def test_an_untouched_history_verifies(self) -> None:
        code, output = run_verify()
        self.assertEqual(code, 0, output)
        self.assertIn("OK: 5 events verified", output)

    @pytest.mark.hipaa("164.312(b)", "164.312(c)(1)", "164.312(c)(2)")
    def test_it_catches_an_altered_event(self) -> None:
        raw("UPDATE audit_accessevent SET ip_address = '203.0.113.5' WHERE seq = 3")
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn(f"event #3 ({self.events[2].code}) was altered", output)

    @pytest.mark.hipaa("164.312(b)", "164.312(c)(1)")
    def test_it_catches_a_rewrite_that_recomputes_every_later_hash(self) -> None:
        """Without the key, an attacker can only recompute plain hashes, which never match."""
        raw("UPDATE audit_accessevent SET action = 'sign_in' WHERE seq = 2")
        rows = list(AccessEvent.objects.order_by("seq").values_list("seq", "prev_hash"))
        prev = rows[0][1]
        for seq, _ in rows:
            forged = hashlib.sha256(f"{prev}{seq}".encode()).hexdigest()
            if seq >= 2:
                raw(
                    "UPDATE audit_accessevent SET prev_hash = %s, hash = %s WHERE seq = %s",
                    (prev, forged, seq),
                )
                prev = forged
            else:
                prev = AccessEvent.objects.get(seq=seq).hash
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn("event #2", output)
        self.assertIn("was altered", output)

    @pytest.mark.hipaa("164.312(b)", "164.312(c)(1)")
    def test_it_catches_a_deleted_event_in_the_middle(self) -> None:
        raw("DELETE FROM audit_accessevent WHERE seq = 3")
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn(f"1 event(s) missing before event #4 ({self.events[3].code})", output)

    @pytest.mark.hipaa("164.312(b)", "164.312(c)(1)")
    def test_it_catches_the_newest_events_deleted(self) -> None:
        raw("DELETE FROM audit_accessevent WHERE seq >= 4")
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn("the chain ends at event #3 but its head records #5", output)

    def test_it_catches_a_head_rewritten_to_match_a_shortened_chain(self) -> None:
        third = self.events[2]
        raw("DELETE FROM audit_accessevent WHERE seq >= 4")
        raw("UPDATE audit_chainhead SET seq = 3, last_hash = %s", (third.hash,))
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn("the chain head was altered", output)

    @pytest.mark.hipaa("164.312(b)", "164.312(c)(1)")
    def test_it_catches_an_old_head_restored_with_the_checkpoint(self) -> None:
        """The head's MAC holds for an old copy of it; the signed checkpoint does not."""
        old = ChainHead.objects.values_list("seq", "last_hash", "mac").get()
        code, output = run_verify("--checkpoint")
        self.assertEqual(code, 0, output)
        audit.record(Action.SEARCH)
        code, output = run_verify("--checkpoint")
        self.assertEqual(code, 0, output)
        raw("DELETE FROM audit_accessevent WHERE seq = 6")
        raw("UPDATE audit_chainhead SET seq = %s, last_hash = %s, mac = %s", old)
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn("the chain has 5 events but checkpoint", output)
        self.assertIn("recorded 6", output)

    @pytest.mark.hipaa("164.312(b)", "164.312(c)(1)")
    def test_it_catches_an_inserted_event(self) -> None:
        """A forged row slipped in after #2 (later rows renumbered) is named as inserted."""
        raw("UPDATE audit_accessevent SET seq = seq + 100 WHERE seq > 2")
        raw("UPDATE audit_accessevent SET seq = seq - 99 WHERE seq > 100")
        columns = ", ".join(EVENT_COLUMNS)
        copied = ", ".join(
            {"code": "%s", "seq": "3", "hash": "%s"}.get(c, c) for c in EVENT_COLUMNS
        )
        forged = hashlib.sha256(b"forged").hexdigest()
        code_value = uuid.uuid4().hex if connection.vendor == "sqlite" else str(uuid.uuid4())
        raw(
            f"INSERT INTO audit_accessevent ({columns}) "  # noqa: S608
            f"SELECT {copied} FROM audit_accessevent WHERE seq = 4",
            (code_value, forged),
        )
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn("event #3 (", output)
        self.assertIn("was inserted", output)

    def test_it_catches_an_event_appended_without_the_key(self) -> None:
        columns = ", ".join(EVENT_COLUMNS)
        copied = ", ".join(
            {"code": "%s", "seq": "6", "hash": "%s", "prev_hash": "%s"}.get(c, c)
            for c in EVENT_COLUMNS
        )
        code_value = uuid.uuid4().hex if connection.vendor == "sqlite" else str(uuid.uuid4())
        raw(
            f"INSERT INTO audit_accessevent ({columns}) "  # noqa: S608
            f"SELECT {copied} FROM audit_accessevent WHERE seq = 5",
            (code_value, self.events[4].hash, "f" * 64),
        )
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn("event #6 (", output)
        self.assertIn("was inserted", output)

    @pytest.mark.hipaa("164.312(b)", "164.312(c)(1)")
    def test_it_catches_a_truncated_history(self) -> None:
        code, output = run_verify("--checkpoint")
        self.assertEqual(code, 0, output)
        if connection.vendor == "postgresql":
            raw("TRUNCATE audit_accessevent, audit_chainhead")
        else:
            raw("DELETE FROM audit_accessevent")
            raw("DELETE FROM audit_chainhead")
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn("the chain has 0 events but checkpoint", output)
        self.assertIn("events #1 to #5 were deleted (truncated)", output)

    def test_a_checkpoint_of_an_empty_history_holds(self) -> None:
        """A checkpoint taken before the first event is no reason to cry wolf later."""
        checkpoints.write(checkpoints.make(0, "0" * 64))
        code, output = run_verify()
        self.assertEqual(code, 0, output)
        self.assertIn("1 signed checkpoint(s) match", output)

    def test_it_refuses_a_forged_checkpoint(self) -> None:
        mark = checkpoints.make(5, self.events[4].hash)
        checkpoints.write(mark)
        storage_path = Path(settings.STORAGES["vault"]["OPTIONS"]["location"]) / mark.name
        storage_path.chmod(0o600)
        storage_path.write_text(storage_path.read_text().replace('"seq": 5', '"seq": 4'))
        code, output = run_verify()
        self.assertEqual(code, 1)
        self.assertIn("has a bad signature", output)


@pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"], reason="PostgreSQL triggers"
)
class AppendOnlyTriggerTestCase(TestCase):
    def setUp(self) -> None:
        self.event = audit.record(Action.SEARCH)

    def _refused(self, sql: str) -> None:
        with self.assertRaisesMessage(DatabaseError, "append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)

    @pytest.mark.hipaa("164.312(b)")
    def test_it_refuses_update_in_sql(self) -> None:
        self._refused("UPDATE audit_accessevent SET ip_address = '203.0.113.5'")

    @pytest.mark.hipaa("164.312(b)")
    def test_it_refuses_delete_in_sql(self) -> None:
        self._refused("DELETE FROM audit_accessevent")

    @pytest.mark.hipaa("164.312(b)")
    def test_it_refuses_truncate_in_sql(self) -> None:
        # The insert's foreign-key checks are deferred; settle them, as a later transaction would.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        self._refused("TRUNCATE audit_accessevent")
        self._refused("TRUNCATE audit_chainhead")
        self._refused("TRUNCATE audit_accessevent, audit_chainhead CASCADE")
        self.assertEqual(AccessEvent.objects.count(), 1)

    def test_it_refuses_delete_through_the_orm(self) -> None:
        with self.assertRaises(DatabaseError), transaction.atomic():
            AccessEvent.objects.filter(pk=self.event.pk).delete()

    def test_the_head_only_moves_forward(self) -> None:
        with self.assertRaisesMessage(DatabaseError, "only moves forward"), transaction.atomic():
            ChainHead.objects.update(seq=0)
        with self.assertRaisesMessage(DatabaseError, "only moves forward"), transaction.atomic():
            ChainHead.objects.all().delete()
        audit.record(Action.SEARCH)
        self.assertEqual(ChainHead.objects.get().seq, 2)
