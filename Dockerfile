# sockmux in a container: a static binary on a minimal base, run as a
# user that is not root, reading its config from /etc/sockmux.
#
#   docker build -t sockmux .
#   docker run -v /etc/sockmux:/etc/sockmux:ro -p 9000:9000 sockmux
#
# Mount a folder with sockmux.toml (and the key files it names: relative
# paths are read from the file's folder) at /etc/sockmux.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sockmux ./cmd/sockmux

# distroless/static: CA certificates, /etc/passwd with "nonroot", no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sockmux /usr/local/bin/sockmux
USER nonroot:nonroot
# A generated TLS certificate and the control socket live here.
ENV XDG_STATE_HOME=/home/nonroot/.local/state
ENTRYPOINT ["/usr/local/bin/sockmux"]
CMD ["run", "-c", "/etc/sockmux/sockmux.toml"]
