# pixel-server: slim Python base, non-root, data directory as a volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 pixel \
 && mkdir /data && chown pixel:pixel /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pixel_server ./pixel_server
COPY snippets ./snippets
COPY dashboards ./dashboards
# Editable install: the snippet sources and dashboard templates stay in /app
# next to the package, where the server reads them.
RUN pip install -e .

USER pixel
ENV PIXEL_DATA_DIR=/data \
    PIXEL_HOST=0.0.0.0 \
    PIXEL_PORT=8000 \
    PIXEL_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

ENTRYPOINT ["pixel-server"]
CMD ["serve"]
