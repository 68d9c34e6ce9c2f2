# OpsHub agent image. Build: docker build -t opshub .
# BASE lets a registry-less build use a locally imported Node 20 image.
ARG BASE=node:20-bookworm-slim
FROM ${BASE}

WORKDIR /opt/opshub
ENV NODE_ENV=production \
    OPS_DATA_DIR=/data \
    OPSHUB_LISTEN=0.0.0.0:8089

# Dependencies first, so code changes do not invalidate this layer.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY bin ./bin
COPY core ./core
COPY plugins ./plugins
COPY schemas ./schemas
COPY config ./config
COPY config/opshub.yaml /etc/opshub/opshub.yaml

RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8089

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8089/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node is PID 1 and handles SIGTERM itself: it drains the pipeline and exits 0.
ENTRYPOINT ["node", "bin/opshub.mjs"]
CMD ["run", "-c", "/etc/opshub/opshub.yaml"]
