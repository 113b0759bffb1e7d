# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t traefik-influxdb-bridge .

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Set by BuildKit for the platform being built (--platform); empty with the legacy builder.
ARG TARGETOS
ARG TARGETARCH
# A static binary (no cgo) with no build paths in it; deploytest/dockerfile_test.go runs this exact line.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/traefik-influxdb-bridge ./cmd/traefik-influxdb-bridge
# The disk buffer's directory, handed to the non-root user below (distroless has no shell to make it there).
RUN mkdir -p /out/buffer

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/traefik-influxdb-bridge /usr/local/bin/traefik-influxdb-bridge
COPY --from=build --chown=65532:65532 /out/buffer /var/lib/traefik-influxdb-bridge
# 65532 is distroless's "nonroot"; numeric so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
EXPOSE 9180
ENTRYPOINT ["/usr/local/bin/traefik-influxdb-bridge"]
CMD ["--config", "/etc/traefik-influxdb-bridge/config/config.yaml"]
