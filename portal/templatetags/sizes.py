"""{{ bytes|file_size }} in every template (a builtin: see TEMPLATES in the settings)."""

from django import template

from portal.sizes import file_size

register = template.Library()
register.filter("file_size", file_size)
