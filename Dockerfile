# vigil container image.
#
#   docker build --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t vigil .
#   docker run --init -v vigil-data:/var/lib/vigil \
#     -e VIGIL_API_TOKEN="$(openssl rand -hex 32)" -e VIGIL_AUDIT_KEY="$(cat audit.key)" \
#     -p 7070:7070 -p 9464:9464 vigil
#
# With nothing mounted, the image runs deploy/docker/vigil.yaml (copied to /etc/vigil/vigil.yaml):
# API and metrics on 0.0.0.0 inside the container so published ports reach them, state in the
# /var/lib/vigil volume, token and audit key from the environment, and no policies yet. Mount your
# own configuration over /etc/vigil/vigil.yaml (`-v "$PWD/vigil.yaml:/etc/vigil/vigil.yaml:ro"`).
# The HEALTHCHECK uses 127.0.0.1, which any listen address covers. Secrets come in through ${env:…}
# or ${file:…} references (e.g. a mounted Docker/Kubernetes secret), never baked into the image.
#
# Both stages use one base image, pinned by the digest of its multi-platform index. To update it
# (docs/operations.md, "The image"): `docker buildx imagetools inspect node:24-bookworm-slim`,
# put the new index digest into both FROM lines and the base.digest label, build, run the tests.
# Renovate's or Dependabot's docker updater can propose the same change.

# ---- build: install everything, bundle, and gather the runtime's node_modules ---------------
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS build
WORKDIR /app
ENV NODE_ENV=development \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci
# tsconfig.json: esbuild takes class-field semantics and module syntax rules from it.
COPY tsconfig.json ./
COPY scripts/bundle.ts ./scripts/bundle.ts
COPY src ./src
# dist/bundle/: the minified bundle with its chunks, source maps and third-party licences.
# /runtime/node_modules: only the packages the bundle leaves external (scripts/bundle.ts says why
# each) and their production dependencies, as npm ci installed them; the script refuses a dev
# dependency there. Checked here: no second Node binary (the `node` dev dependency) and under
# 30 MB.
RUN npm run bundle -- --node-modules /runtime \
 && test ! -e /runtime/node_modules/node \
 && test ! -e /runtime/node_modules/.bin \
 && test ! -e /runtime/node_modules/typescript \
 && test ! -e /runtime/node_modules/esbuild \
 && test "$(du -sm /runtime/node_modules | cut -f1)" -lt 30

# ---- runtime ----------------------------------------------------------------------------------
# node:24-bookworm-slim rather than gcr.io/distroless/nodejs24-debian12: the same base as the build
# stage (shared layers, the glibc any native module was built against), and `node` on PATH as the
# ENTRYPOINT and HEALTHCHECK below expect (distroless has /nodejs/bin/node and no PATH entry).
# The price is a shell and apt in the image; npm, npx, corepack and yarn are removed below, the
# process runs as an unprivileged uid, and Kubernetes can add a read-only root filesystem
# (deploy/kubernetes/sidecar.yaml). Moving to distroless means changing FROM, ENTRYPOINT and
# HEALTHCHECK to /nodejs/bin/node and creating /var/lib/vigil in the build stage.
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS runtime
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Continuous verification agent for zero-trust infrastructure" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim" \
      org.opencontainers.image.base.digest="sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d"
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && groupadd --gid 65532 vigil \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vigil \
 && mkdir -p /var/lib/vigil /app /etc/vigil \
 && chown 65532:65532 /var/lib/vigil \
 && chmod 0700 /var/lib/vigil \
 && ln -s /var/lib/vigil /etc/vigil/var

# The young generation capped at 32 MB semi-spaces, as in the systemd unit (BENCHMARKS.md section
# 19): V8's default here is 64 MB, which a large evaluation pass fills and keeps; capped, the pass's
# peak RSS is ~60 MB lower at 100,000 subjects and at 300,000, and the pass no slower. A cap of 16
# lowers the peak further but slows the pass; 2 slows it and raises the peak. `vigil run` itself
# turns V8's allocation-site pretenuring off (NODE_OPTIONS does not take that flag; BENCHMARKS.md
# section 22).
# Node's on-disk compile cache (src/cli/compile-cache.ts): the root filesystem may be read-only, so
# it lives in the state volume, and a restart reads the code compiled by the previous start.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=32 \
    NODE_COMPILE_CACHE=/var/lib/vigil/.compile-cache
WORKDIR /app
# Code stays owned by root: the agent can read it but not change it. The bundle carries its
# version, so neither package.json nor bin/ (which only picks a Node version) is needed.
COPY --from=build /runtime/node_modules ./node_modules
COPY --from=build /app/dist/bundle ./dist/bundle
# The default configuration: root-owned and read-only to the agent, like the code.
COPY deploy/docker/vigil.yaml /etc/vigil/vigil.yaml

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
ENTRYPOINT ["node", "/app/dist/bundle/vigil.mjs"]
CMD ["run", "-c", "/etc/vigil/vigil.yaml"]
