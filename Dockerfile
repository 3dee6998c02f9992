# syntax=docker/dockerfile:1
# The image of nodewright-scheduler: `make image` (needs a Docker engine with BuildKit).
#
# The builder runs `make build`, so the binary carries the same version stamps as a local
# build; .git is not sent to the builder, so the commit comes in as a build argument.
FROM golang:1.26 AS build
WORKDIR /src
# Modules first: a change of nodewright's source does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG GIT_COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 make build GIT_COMMIT=${GIT_COMMIT}

# A static binary needs no libc: distroless static, as user nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/bin/nodewright-scheduler /usr/local/bin/nodewright-scheduler
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/nodewright-scheduler"]
