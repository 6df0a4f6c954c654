# podserve's image: Debian 12 with Node.js 20, runc and conmon, serving the API on a socket in a host volume.
# Both stages install through scripts/setup.sh, the same script the README's commands use, so the install
# steps here are the ones the test suite exercises.
#
#   docker build -t podserve .
#   docker run -d --name podserve --privileged \
#     -v /run/podserve:/run/podserve -v podserve-state:/var/lib/podserve podserve
#   curl --unix-socket /run/podserve/podserve.sock http://d/_ping
#
# --privileged: runc needs every capability, /dev, and cgroup and mount access to create containers.

# Build stage: compilers for the native npm modules (better-sqlite3, node-pty) if no prebuilt binary fits,
# then scripts/setup.sh runs npm ci and the TypeScript build.
FROM node:20-bookworm-slim AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/podserve
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY routes ./routes
COPY schemas ./schemas
COPY systemd ./systemd
RUN scripts/setup.sh \
 && rm -rf /var/lib/apt/lists/*

# Runtime stage: the same script installs runc, conmon and the other runtime packages (npm ci is skipped: the
# build stage's node_modules match the lock file), then the development packages are dropped.
FROM node:20-bookworm-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /opt/podserve
COPY --from=build /opt/podserve /opt/podserve
RUN scripts/setup.sh \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /var/lib/apt/lists/* \
 && systemd/install.sh
# Persistent state (images, containers, logs); the socket's directory is meant to be a host volume.
VOLUME ["/var/lib/podserve"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s CMD ["node", "-e", "require('http').get({socketPath:'/run/podserve/podserve.sock',path:'/_ping'},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
ENTRYPOINT ["/usr/local/bin/podserve"]
CMD ["--log-level=info", "service", "--time=0", "unix:///run/podserve/podserve.sock"]
