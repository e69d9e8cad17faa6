"""Refuse TRUNCATE of the access history and of its head on PostgreSQL.

The row triggers of 0004 refuse UPDATE and DELETE, but TRUNCATE fires no row trigger: one
statement could empty the history. A statement-level BEFORE TRUNCATE trigger on each table
refuses it with the same error.
"""

from django.db import migrations

TRIGGERS = """
CREATE TRIGGER audit_accessevent_no_truncate BEFORE TRUNCATE ON audit_accessevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chainhead_no_truncate BEFORE TRUNCATE ON audit_chainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS audit_accessevent_no_truncate ON audit_accessevent;
DROP TRIGGER IF EXISTS audit_chainhead_no_truncate ON audit_chainhead;
"""


def install(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGERS, params=None)


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGERS, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_dicom_network_actions")]

    operations = [migrations.RunPython(install, drop)]
