"""The back office: the Django admin, scoped per practice (scope.py), with its registrations."""

from portal.admin import compliance, records  # noqa: F401  (registers the practice's models)
from portal.dicomnet import admin as dicomnet_admin  # noqa: F401,E402  (receiver and devices)
