"""PostgreSQL for the test suite, as Django's backend but for flushing between tests.

The access history refuses TRUNCATE (a trigger, see audit migration 0007), and Django empties
the database after each TransactionTestCase with one TRUNCATE of every table. The flush runs
with session_replication_role = replica, as a superuser restoring a database would (ordinary
triggers do not fire); any other statement keeps meeting the triggers.
"""

from django.db import transaction
from django.db.backends.postgresql import base


class DatabaseOperations(base.DatabaseOperations):
    def execute_sql_flush(self, sql_list) -> None:
        conn = self.connection
        with transaction.atomic(using=conn.alias, savepoint=conn.features.can_rollback_ddl):
            with conn.cursor() as cursor:
                cursor.execute("SET LOCAL session_replication_role = replica")
                for sql in sql_list:
                    cursor.execute(sql)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
