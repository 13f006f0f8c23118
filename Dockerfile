# One image for every RadRelay process (api, worker, gateway, migrate); compose.yaml picks the
# command. The UI is built in a Node stage and served by the API.
FROM node:20-bookworm-slim AS ui
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY worklist_rules ./worklist_rules
COPY reports_templates ./reports_templates
RUN pip install --no-cache-dir .
COPY --from=ui /src/frontend/dist /app/frontend/dist
ENV RADRELAY_FRONTEND_DIR=/app/frontend/dist \
    RADRELAY_RULES_DIR=/app/worklist_rules \
    RADRELAY_TEMPLATES_DIR=/app/reports_templates \
    RADRELAY_DATA_DIR=/data
VOLUME /data
EXPOSE 8000 11112
CMD ["radrelay", "serve", "--host", "0.0.0.0", "--port", "8000"]
