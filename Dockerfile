# syntax=docker/dockerfile:1
# The actionrelay worker: slim, non-root (uid 10001), read-only-root friendly.
#   docker build -t actionrelay .
#   docker run --rm -e ACTIONRELAY_AMQP_URL=amqp://... actionrelay        # = actionrelay run
#   docker build --build-arg EXTRAS=otel -t actionrelay .                  # with OpenTelemetry
# Linted by tests/unit/deploy/test_deploy.py (hadolint, from the dev extra).

FROM python:3.11-slim-trixie AS build
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# A virtualenv keeps the runtime stage to one COPY and out of the system site-packages.
RUN python -m venv /opt/actionrelay \
 && /opt/actionrelay/bin/pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}"

FROM python:3.11-slim-trixie
LABEL org.opencontainers.image.title="actionrelay" \
      org.opencontainers.image.description="Journey custom actions: RabbitMQ step events in, REST calls, result events out" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 actionrelay \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin actionrelay
COPY --from=build /opt/actionrelay /opt/actionrelay
# Example actions so the image starts on its own; mount your own over this directory.
COPY examples/actions /etc/actionrelay/actions
ENV PATH=/opt/actionrelay/bin:$PATH \
    ACTIONRELAY_ACTIONS_DIR=/etc/actionrelay/actions \
    ACTIONRELAY_HTTP_PORT=9464 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric USER so Kubernetes can enforce runAsNonRoot.
USER 10001:10001
EXPOSE 9464
# Liveness on /healthz of ACTIONRELAY_HTTP_PORT; port 0 turns the probes off, so nothing to check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as u; p = os.environ.get('ACTIONRELAY_HTTP_PORT', '9464'); sys.exit(p != '0' and u.urlopen(f'http://127.0.0.1:{p}/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["actionrelay"]
CMD ["run"]
