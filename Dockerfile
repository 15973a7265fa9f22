# syntax=docker/dockerfile:1.7
# Images of AuthStack, one target per binary:
#   docker build --target manager    -t ghcr.io/leanauth/authstack-operator:TAG .
#   docker build --target authserver -t ghcr.io/leanauth/authserver:TAG .
# Add --build-arg VERSION=vX.Y.Z on releases: the operator then defaults
# --authserver-image to ghcr.io/leanauth/authserver:vX.Y.Z.
# Static binaries (CGO_ENABLED=0), built on the build platform for the target
# platform, so `docker buildx build --platform linux/amd64,linux/arm64` works
# without emulation.

ARG GO_VERSION=1.26
ARG PG_MAJOR=17

# ---- modules: downloaded once, shared by both builds ----
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS modules
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

# ---- builder: the sources and the common build settings ----
FROM modules AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=""
ENV CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} GOFLAGS=-trimpath
# Everything not excluded by .dockerignore; the builds below pick their packages.
COPY . .

FROM builder AS build-manager
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w -X main.version=${VERSION}" -o /out/manager ./cmd/manager

FROM builder AS build-authserver
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w -X github.com/leanauth/authstack/authserver/app.Version=${VERSION}" -o /out/authserver ./cmd/authserver

# ---- manager: the operator ----
# distroless/static: no shell, no package manager, CA certificates and tzdata only.
FROM gcr.io/distroless/static-debian12:nonroot AS manager
LABEL org.opencontainers.image.title="authstack-operator" \
      org.opencontainers.image.source="https://github.com/leanauth/authstack"
WORKDIR /
COPY --from=build-manager /out/manager /manager
# The numeric user the Deployments' securityContext (runAsUser 1001) expects.
USER 1001:1001
ENTRYPOINT ["/manager"]

# ---- authserver: the auth service, and its backup/restore jobs ----
# The backup CronJobs run this image as `authserver backup postgres|redis`, and
# restores use its pg_restore (docs/backup-and-restore.md), so it ships the
# PostgreSQL client tools of the newest major AuthStack supports (17: pg_dump
# dumps servers of its own and older majors). They come from the official
# postgres image, where they sit in /usr/local/bin with their libraries; the
# server binaries come along unused. The Go binary itself is static.
# Keep PG_MAJOR in step with the Enum of spec.database.managed.version.
FROM docker.io/library/postgres:${PG_MAJOR}-alpine AS authserver
LABEL org.opencontainers.image.title="authserver" \
      org.opencontainers.image.source="https://github.com/leanauth/authstack"
WORKDIR /
COPY --from=build-authserver /out/authserver /authserver
# The base image's entrypoint, CMD and data VOLUME serve the server; ENTRYPOINT
# and CMD are replaced below, the volume stays unused.
USER 1001:1001
# HTTP API on 3000, metrics on 9090 (see docs/ and the operator's Service).
EXPOSE 3000 9090
# The base image stops with SIGINT; the authserver drains on SIGTERM as Kubernetes expects (it handles both).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/authserver"]
CMD []
