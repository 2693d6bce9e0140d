# The chat server's image (docker-compose.yml's migrate, web and worker services).
# Build stage: the dependencies into a virtual environment at a fixed path.
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# Final stage: that environment and the code, nothing else; run as an unprivileged user.
FROM python:3.11-slim
ENV VENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
# The code belongs to root and is read-only to the server; it writes to .data (collected static
# files, the worker's beat schedule) and /files (uploads and media, the `files` volume, which takes
# this folder's owner when it is first mounted).
RUN groupadd --system --gid 10001 chat \
    && useradd --system --uid 10001 --gid chat --home-dir /app --no-create-home --shell /usr/sbin/nologin chat \
    && mkdir -p /app/.data /files/media /files/partial \
    && chown -R chat:chat /app/.data /files
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY . .
# Static files collected once here; scripts/run_server.sh's collectstatic at start then finds them
# current. The key only lets the settings load: nothing is signed at build time.
RUN SECRET_KEY=build-time-collectstatic-only python manage.py collectstatic --noinput -v0 \
    && chown -R chat:chat /app/.data
USER 10001:10001
EXPOSE 8000
# GET /health with a Host the deployment allows (docker-compose.yml adds localhost to ALLOWED_HOSTS).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), headers={'Host': 'localhost'}), timeout=4)"]
CMD ["./scripts/run_server.sh"]
