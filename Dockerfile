# One image for every Basalt process; docker-compose.yml picks the entry point.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      tgt libiscsi-bin qemu-utils qemu-block-extra lvm2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/basalt
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY libs libs
COPY services services
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev
ENV BASALT__DATABASE__CONNECTION=postgres://postgres:basalt@postgres:5432/basalt \
    BASALT__RABBIT__TRANSPORT_URL=amqp://guest:guest@rabbitmq:5672/
