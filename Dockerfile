# vigil container image.
#
#   docker build -t vigil .
#   docker run --init -v vigil-data:/var/lib/vigil -v "$PWD/vigil.yaml:/app/config/vigil.yaml:ro" \
#     -e VIGIL_API_TOKEN=... -p 7070:7070 -p 9464:9464 vigil
#
# State goes to the /var/lib/vigil volume: set `agent.data_dir: /var/lib/vigil`, or keep the
# default ./var, which /app/var points at. Listen on 0.0.0.0 (agent.api.listen,
# agent.metrics.listen) for published ports to be reachable; the HEALTHCHECK itself uses
# 127.0.0.1 and works with the loopback default. Secrets come in through
# ${env:…} or ${file:…} references in the configuration (e.g. a mounted Docker/Kubernetes secret),
# never baked into the image.
#
# Base images are pinned by tag only: the digest cannot be resolved offline where this file was
# written. In CI, pin both FROM lines to a digest (node:24-bookworm-slim@sha256:…) and let a bot
# such as Renovate/Dependabot bump it.

# ---- build: install everything, compile TypeScript, then drop dev dependencies ----------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
ENV NODE_ENV=development \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npm run build
# Removes typescript, @types/node and the `node` dev dependency (an npm package that ships its own
# Node binary): the runtime uses the image's Node and must not carry a second one.
RUN npm prune --omit=dev \
 && test ! -e node_modules/node \
 && test ! -e node_modules/.bin/node \
 && test ! -e node_modules/typescript
COPY bin ./bin
COPY config ./config

# ---- runtime ----------------------------------------------------------------------------------
# node:24-bookworm-slim rather than gcr.io/distroless/nodejs24-debian12: the same base as the build
# stage (shared layers, the glibc any native module was built against), and `node` on PATH as the
# ENTRYPOINT and HEALTHCHECK below expect (distroless has /nodejs/bin/node and no PATH entry).
# The price is a shell and apt in the image; npm, npx, corepack and yarn are removed below, the
# process runs as an unprivileged uid, and Kubernetes can add a read-only root filesystem
# (deploy/kubernetes/sidecar.yaml). Moving to distroless means changing FROM, ENTRYPOINT and
# HEALTHCHECK to /nodejs/bin/node and creating /var/lib/vigil in the build stage.
FROM node:24-bookworm-slim AS runtime
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && groupadd --gid 65532 vigil \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vigil \
 && mkdir -p /var/lib/vigil /app \
 && chown 65532:65532 /var/lib/vigil \
 && chmod 0700 /var/lib/vigil \
 && ln -s /var/lib/vigil /app/var

# A 2 MB young generation (default 16 MB) trims ~13 MB off idle RSS at the cost of more frequent,
# equally short scavenges.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=2
WORKDIR /app
# Code stays owned by root: the agent can read it but not change it.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/config ./config

# State, queue and audit log. Declared as a volume so it outlives the container.
VOLUME ["/var/lib/vigil"]
# 7070: agent API with /healthz and /readyz; 9464: Prometheus /metrics.
EXPOSE 7070 9464

USER 65532:65532
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7070/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# As PID 1, Node neither reaps orphaned child processes nor gets default signal handling; vigil
# handles SIGTERM/SIGHUP itself, and `docker run --init` (tini) covers the reaping.
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["run", "-c", "/app/config/vigil.yaml"]
