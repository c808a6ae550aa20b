# syntax=docker/dockerfile:1
# The perf-sentinel daemon image: one self-contained binary on a distroless
# base, running as an unprivileged user, `watch` by default.
#
#   docker build -t perf-sentinel .
#   docker run --rm -p 4317:4317 -p 4318:4318 perf-sentinel
#
# The binary links every Rust crate statically (TLS is rustls with ring: no
# OpenSSL); only glibc stays dynamic, because detector plugins are shared
# libraries loaded with dlopen, which a fully static (musl) binary cannot do.
# The base image carries glibc and nothing else: no shell, no package manager.

ARG RUST_VERSION=1.89
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p perf-sentinel --bin perf-sentinel \
    && install -D -m 0755 target/release/perf-sentinel /out/perf-sentinel

# Debian 12 like the build stage: the same glibc.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/perf-sentinel /usr/local/bin/perf-sentinel
# nobody:nogroup, as the Helm chart's securityContext runs it.
USER 65534:65534
WORKDIR /
# OTLP gRPC; OTLP HTTP, Zipkin, /health, /metrics, /api.
EXPOSE 4317 4318
ENTRYPOINT ["/usr/local/bin/perf-sentinel"]
# A container is reached from outside: listen on every interface. The chart
# replaces these arguments with its own (`watch --config ...`).
CMD ["watch", "--listen-address", "0.0.0.0"]
