# Production image: gunicorn behind TLS termination, whitenoise for static files, non-root.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORTAL_MODE=production \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
RUN groupadd --system portal && useradd --system --gid portal --home /app portal

COPY pyproject.toml README.md ./
COPY portal ./portal
COPY sharing ./sharing
COPY viewer ./viewer
COPY audit ./audit
COPY templates ./templates
COPY static ./static
COPY manage.py ./
RUN pip install '.[prod]'

# collectstatic needs settings to load; these throwaway values never reach a running container.
RUN SECRET_KEY=collectstatic-only \
    PORTAL_KEYS="build:$(python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')" \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/build.sqlite3

USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--worker-class", "gthread", "--threads", "4", "--timeout", "300"]
