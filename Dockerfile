# credmail daemon image (not built by the tests: docker is not available where they run).
#   docker build -t credmail .
#   docker run --rm -v /srv/credmail/etc:/etc/credmail:ro -v credmail-state:/var/lib/credmail \
#       credmail db upgrade          # once, and after every new image
#   docker run -d --name credmail -v /srv/credmail/etc:/etc/credmail:ro \
#       -v credmail-state:/var/lib/credmail credmail
#   docker run -d --name credmail-web -p 127.0.0.1:8080:8080 \
#       -v /srv/credmail/etc:/etc/credmail:ro -v credmail-state:/var/lib/credmail \
#       credmail web --listen 0.0.0.0:8080   # the reset page, behind the TLS proxy
# /etc/credmail holds credmail.toml and the secret files (readable by uid 10001).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CREDMAIL_CONFIG=/etc/credmail/credmail.toml
# tzdata: daemon.timezone (Europe/Rome) must resolve; ca-certificates: verified TLS;
# postgresql-client: pg_dump and pg_restore for `credmail db backup` / `db restore`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata ca-certificates postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 credmail \
    && useradd --system --uid 10001 --gid credmail --home-dir /var/lib/credmail \
       --no-create-home --shell /usr/sbin/nologin credmail \
    && install -d -m 0700 -o credmail -g credmail /var/lib/credmail \
    && install -d -m 0750 -o root -g credmail /etc/credmail
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir ".[postgres]" \
    && install -D -m 0644 README.md /usr/local/share/doc/credmail/README.md

USER credmail
WORKDIR /var/lib/credmail
VOLUME ["/etc/credmail", "/var/lib/credmail"]
# `credmail web` (the reset page) listens here when run with --listen 0.0.0.0:8080.
EXPOSE 8080
# Unhealthy when the last successful sync is older than daemon.stale_after_seconds.
HEALTHCHECK --interval=60s --timeout=20s --start-period=300s --retries=3 \
    CMD ["credmail", "status"]
ENTRYPOINT ["credmail"]
CMD ["run"]
