# credmail daemon image. Mount the config at /etc/credmail/credmail.toml and a volume at /var/lib/credmail.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CREDMAIL_CONFIG=/etc/credmail/credmail.toml
RUN useradd --system --home /var/lib/credmail --create-home credmail
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir ".[postgres]"

USER credmail
WORKDIR /var/lib/credmail
VOLUME ["/var/lib/credmail"]
ENTRYPOINT ["credmail"]
CMD ["run"]
