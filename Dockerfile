# OpsHub agent image.
#
#   DOCKER_BUILDKIT=1 docker build -t opshub .
#   # behind a TLS-intercepting proxy: give npm the proxy's CA (never stored in the image)
#   DOCKER_BUILDKIT=1 docker build --secret id=extra_ca,src=/path/to/corporate-ca.pem -t opshub .
#   # without registry access: any Node 20 image on Debian bookworm as the base
#   DOCKER_BUILDKIT=1 docker build --build-arg BASE=my-registry/node:20 -t opshub .
#
# Runs as the unprivileged user opshub (uid 10001); state lives in the /data
# volume; the Docker socket is read through a read-only mount and the socket's
# group (see README, "Running in Docker").

ARG BASE=node:20-bookworm-slim

# ---- build: production dependencies (TypeScript runs through tsx, no compile step)
FROM ${BASE} AS build
WORKDIR /opt/opshub
COPY package.json package-lock.json ./
# extra_ca (optional BuildKit secret): PEM certificates npm trusts besides the
# built-in ones, mounted only for this step. --ignore-scripts: no dependency
# needs an install script at run time (native code comes prebuilt in the
# packages: DuckDB, esbuild), and none get the chance to build optional addons.
RUN --mount=type=secret,id=extra_ca \
    if [ -s /run/secrets/extra_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra_ca; fi; \
    set -e; flags="--omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error"; \
    npm ci $flags; \
    npm cache clean --force >/dev/null 2>&1

# ---- runtime
FROM ${BASE}
ENV NODE_ENV=production \
    OPS_DATA_DIR=/data \
    OPSHUB_LISTEN=0.0.0.0:8089 \
    OPSHUB_CONFIG=/etc/opshub/opshub.yaml \
    NVIDIA_DRIVER_CAPABILITIES=utility
RUN groupadd --system --gid 10001 opshub \
    && useradd --system --uid 10001 --gid opshub --home-dir /data --no-create-home --shell /usr/sbin/nologin opshub \
    && mkdir -p /data /etc/opshub \
    && chown opshub:opshub /data
WORKDIR /opt/opshub
COPY --from=build /opt/opshub/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY core ./core
COPY plugins ./plugins
COPY schemas ./schemas
COPY config ./config
# opshub.yaml runs by default; opshub-stack.yaml (+ Loki) and opshub-fleet.yaml (+ remote write and Loki) are there to pick with -c.
COPY deploy/opshub.yaml deploy/opshub-stack.yaml deploy/opshub-fleet.yaml /etc/opshub/

VOLUME ["/data"]
USER opshub
EXPOSE 8089

# /health is public even with OPSHUB_AUTH_TOKEN set; the port follows OPSHUB_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.OPSHUB_LISTEN||'').split(':').pop()||'8089';fetch('http://127.0.0.1:'+p+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node handles SIGTERM itself (also as PID 1): inputs stop, outputs flush within
# agent.shutdown_timeout (8 s in the image's pipeline), exit code 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/opshub.mjs"]
CMD ["run", "-c", "/etc/opshub/opshub.yaml"]
