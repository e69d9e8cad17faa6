"""`manage.py benchmark`: the generated study, timers and servers the figures are measured on."""
