# syntax=docker/dockerfile:1
# The codeq server image: `docker build -t codeq:0.1.0 .` from the repository root.
# Run:  docker run -p 8080:8080 -v codeq-data:/var/lib/codeq codeq:0.1.0
# (dev mode on the embedded SQLite store; pass `--config /etc/codeq/config.yaml` with a
# mounted file, or environment variables, for production; see helm/codeq for Kubernetes).

ARG PYTHON_VERSION=3.12

# ---- build: install the project and its Redis extra into a virtualenv ---------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/codeq
WORKDIR /src
# The checkout (see .dockerignore for what stays out of the build context).
COPY . .
RUN /opt/codeq/bin/pip install ".[redis]" \
 && /opt/codeq/bin/codeq --help >/dev/null

# ---- runtime ---------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="codeq" \
      org.opencontainers.image.description="codeq: a durable task queue server with an HTTP API" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed, unprivileged uid/gid (the Helm chart's securityContext uses the same numbers).
RUN groupadd --system --gid 10001 codeq \
 && useradd --system --uid 10001 --gid codeq --home-dir /home/codeq --create-home \
            --shell /usr/sbin/nologin codeq \
 && mkdir -p /var/lib/codeq \
 && chown codeq:codeq /var/lib/codeq

COPY --from=build /opt/codeq /opt/codeq

# codeq's default dataDir is $XDG_DATA_HOME/codeq: the SQLite file, artifacts and the dev
# signing key go to /var/lib/codeq (mount a volume there). XDG_DATA_HOME is not a codeq
# setting, so a config file's dataDir still wins.
ENV PATH=/opt/codeq/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_DATA_HOME=/var/lib

USER 10001:10001
WORKDIR /home/codeq
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["codeq", "serve"]
# Listen on every interface of the container (dev mode would bind to 127.0.0.1).
# Arguments given to `docker run` / the chart's `args` replace this.
CMD ["--host", "0.0.0.0"]
