# The pipeline's processes (ingress, worker, topic set-up, replay): one image, the
# command picks the console script. See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY ingress ingress
COPY streams streams
COPY schemas schemas
COPY zoho zoho
COPY sources sources
RUN pip install . && rm -rf /src

RUN useradd --system --create-home --home-dir /app --uid 10001 app
USER app
WORKDIR /app
# The worker keeps its Faust state in var/worker and creates only the last directory;
# the ingress's spool volume mounts on var/ingress-spool, created here so the app user
# owns it.
RUN mkdir -p var/ingress-spool

# Listen on all interfaces: inside a container 127.0.0.1 is unreachable from outside.
ENV INGRESS_HOST=0.0.0.0 \
    SOURCES_FILE=/config/sources.yaml
EXPOSE 8080
CMD ["zoho-cdp-ingress"]
