# The service image: the same code for the web, worker and migrate roles (see docker-compose.yml).
# Production dependencies only (no embedded Postgres, no test tools), run as the unprivileged `node` user.
FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY src ./src
COPY sql ./sql
USER node
EXPOSE 3000
# /healthz of the web process, or of a worker's METRICS_PORT (docker-compose.yml sets it to PORT).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.METRICS_PORT || process.env.PORT || 3000}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "src/main.ts", "web"]
