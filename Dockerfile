# syntax=docker/dockerfile:1
# Node 24, the current LTS; package.json's engines (>=20.19) still admits Node 20 for source installs.
# Build stage: compile TypeScript with the dev dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY config ./config
COPY scripts/build.mjs ./scripts/
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled output only, as a non-root user.
FROM node:24-bookworm-slim
# tini as PID 1: it passes SIGTERM/SIGINT on to node and reaps zombies, which node as PID 1
# does not, so no `docker run --init` is needed.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/app/data
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the runtime dependencies need none, and none get to run.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
RUN mkdir -p /app/data && chown node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tini forwards the stop signal to node, which drains in-flight requests itself
# (SHUTDOWN_TIMEOUT_MS, 8 s by default: within Docker's 10 s stop grace).
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server.js"]
