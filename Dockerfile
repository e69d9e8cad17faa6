# The portal's image: gunicorn (web), Celery (worker, beat) and the management commands.
# compose.yaml runs it read-only as an unprivileged user; TLS ends at the proxy in front.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTAL_MODE=production \
    PORTAL_DATA_DIR=/var/lib/portal \
    PORTAL_WORKER_TMP_DIR=/tmp

WORKDIR /app
RUN groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /var/lib/portal --no-create-home portal

# Dependencies first, from the lock file with hashes: a code change reuses this layer.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml README.md manage.py ./
COPY portal ./portal
COPY sharing ./sharing
COPY viewer ./viewer
COPY audit ./audit
COPY templates ./templates
COPY static ./static

# collectstatic loads the settings; these throwaway values never reach a running container.
RUN SECRET_KEY=collectstatic-only \
    PORTAL_KEYS="build:$(python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')" \
    PORTAL_AUDIT_KEY=$(python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())') \
    PORTAL_AUDIT_SIGNING_KEY=$(python -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())') \
    DATABASE_URL=postgres://build@127.0.0.1:1/build \
    CELERY_BROKER_URL=redis://127.0.0.1:1/0 \
    ALLOWED_HOSTS=build.invalid \
    PORTAL_BASE_URL=https://build.invalid \
    PORTAL_VAULT_DIR=/tmp/vault \
    EMAIL_HOST=build.invalid \
    python manage.py collectstatic --noinput \
    && mkdir -p /var/lib/portal/vault /var/lib/portal/beat /var/lib/portal/spool \
    && chown -R portal:portal /var/lib/portal && chmod 0700 /var/lib/portal

# The only places a container writes: the data volume (a local vault, beat's schedule, the
# object store's spool of ciphertext) and /tmp.
VOLUME ["/var/lib/portal"]
USER portal
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gunicorn", "-c", "python:portal.gunicorn_conf", "portal.wsgi:application"]
