"""Key the chain with an HMAC, number its events, bind the head, refuse UPDATE and DELETE.

Existing events are re-chained once under the key (they were hashed without one, so anyone
with the database could have rewritten them). On PostgreSQL, triggers then refuse any UPDATE
or DELETE of an access event and any move of the chain head backwards or its removal.
"""

from django.db import migrations, models

from audit.chain import GENESIS, HASHED_FIELDS, event_mac, head_mac

TRIGGERS = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the access history is append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.seq <= OLD.seq THEN
        RAISE EXCEPTION 'the access history head only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_accessevent_append_only BEFORE UPDATE OR DELETE ON audit_accessevent
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chainhead_forward_only BEFORE UPDATE OR DELETE ON audit_chainhead
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS audit_accessevent_append_only ON audit_accessevent;
DROP TRIGGER IF EXISTS audit_chainhead_forward_only ON audit_chainhead;
DROP FUNCTION IF EXISTS audit_refuse_change();
DROP FUNCTION IF EXISTS audit_head_forward_only();
"""


def rechain(apps, schema_editor) -> None:
    AccessEvent = apps.get_model("audit", "AccessEvent")
    ChainHead = apps.get_model("audit", "ChainHead")
    prev, seq = GENESIS, 0
    for event in AccessEvent.objects.order_by("id").iterator(chunk_size=2000):
        seq += 1
        event.seq = seq
        event.prev_hash = prev
        event.hash = event_mac(prev, tuple(getattr(event, name) for name in HASHED_FIELDS))
        event.save(update_fields=["seq", "prev_hash", "hash"])
        prev = event.hash
    ChainHead.objects.update_or_create(
        pk=1, defaults={"seq": seq, "last_hash": prev, "mac": head_mac(seq, prev)}
    )


def install_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGERS, params=None)


def drop_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGERS, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_patient_change")]

    operations = [
        migrations.AlterField(
            model_name="accessevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("ingest", "Ingest"),
                    ("view_study", "View study"),
                    ("view_series", "View series"),
                    ("view_attachment", "View attachment"),
                    ("download", "Download"),
                    ("search", "Search"),
                    ("share_issue", "Share issued"),
                    ("share_open", "Share link opened"),
                    ("share_verify", "Share verification"),
                    ("share_revoke", "Share revoked"),
                    ("share_unlock", "Share unlocked"),
                    ("share_extend", "Share extended"),
                    ("share_email", "Share emailed"),
                    ("share_lock", "Share locked"),
                    ("sign_in", "Sign-in"),
                    ("sign_out", "Sign-out"),
                    ("access_denied", "Access denied"),
                    ("key_rotation", "Key rotation"),
                    ("shred", "Crypto-shred"),
                    ("upload", "Upload"),
                    ("admin_view", "Viewed in the back office"),
                    ("staff_change", "Staff account changed"),
                    ("patient_change", "Patient record changed"),
                    ("export", "Exported from the back office"),
                ],
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="accessevent",
            name="seq",
            field=models.BigIntegerField(null=True, help_text="Position in the chain, from 1."),
        ),
        migrations.AddField(
            model_name="chainhead",
            name="mac",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="chainhead",
            name="seq",
            field=models.BigIntegerField(default=0, help_text="Events in the chain."),
        ),
        migrations.RunPython(rechain, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="accessevent",
            name="seq",
            field=models.BigIntegerField(unique=True, help_text="Position in the chain, from 1."),
        ),
        migrations.RunPython(install_triggers, drop_triggers),
    ]
