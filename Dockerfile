# The service image: the same code for the web, worker and migrate roles (see docker-compose.yml).
FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY sql ./sql
USER node
EXPOSE 3000
CMD ["node", "src/main.ts", "web"]
