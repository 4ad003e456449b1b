# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home actionrelay
COPY --from=build /install /usr/local
COPY examples/actions /etc/actionrelay/actions
ENV ACTIONRELAY_ACTIONS_DIR=/etc/actionrelay/actions \
    ACTIONRELAY_HTTP_PORT=9464 \
    PYTHONUNBUFFERED=1
USER 10001
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["actionrelay"]
CMD ["run"]
