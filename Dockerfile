# syntax=docker/dockerfile:1
# One image for the three services. Choose with the SERVICE variable:
#   SERVICE=token-proxy       (default) the token proxy
#   SERVICE=instance-deleter  the instance deleter as a plain server
#   SERVICE=autoscaler        the autoscaler (deploy/autoscaler.sh)
# deploy/container/entrypoint.sh starts that service's `main` entry (listed in services/entry-points.ts).
# package.json travels with dist/: its `imports` map `#shared` to dist/shared at run time.
# Cloud Run:  gcloud run deploy ... --image=IMAGE --set-env-vars=SERVICE=instance-deleter,...
# Locally:    docker run --rm -p 8080:8080 -e SERVICE=token-proxy -e AUTH_AUDIENCE=... -e GITHUB_TOKEN=... IMAGE
# See docs/deploy.md. scripts/measure-image.sh reproduces the runtime stage without Docker and measures it.

ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: all dependencies, compile TypeScript into dist/ ---------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY services ./services
RUN npm run build

# --- prod-deps: production dependencies only, without what Node never loads ----------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY deploy/container/prune-node-modules.sh /usr/local/bin/prune-node-modules
# --ignore-scripts: the only production install script is protobufjs's, a version check for its CLI.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && prune-node-modules node_modules \
  && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    SERVICE=token-proxy \
    PORT=8080
WORKDIR /app
# Files stay owned by root and read-only to the service's user.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /src/dist/shared ./dist/shared
COPY --from=build /src/dist/services ./dist/services
COPY deploy/container/entrypoint.sh /usr/local/bin/entrypoint
# The image's npm is not needed at run time; removing it leaves less to patch and nothing to misuse.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg
# The node image's unprivileged user (uid 1000).
USER node
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/entrypoint"]
