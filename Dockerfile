# syntax=docker/dockerfile:1
# Switchyard image: docker build -t switchyard:0.1.0 .
# The binary links glibc dynamically (and aws-lc-rs statically), so the runtime is distroless
# "cc" (glibc, libgcc, CA certificates; no shell), running as uid 65532 ("nonroot").

FROM rust:1-bookworm AS build
# setcap: see below. (Unpinned: bookworm's point releases replace the exact version.)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcap2-bin \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Cargo.toml names the benches, so they must exist for the manifest to load.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY config config
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin switchyard \
    && install -m 0755 target/release/switchyard /switchyard
# Kubernetes gives a non-root process no ambient capabilities: capabilities.add only fills
# the bounding and permitted sets. The file capability lets the binary bind ports 80/443 as
# uid 65532 when the pod adds NET_BIND_SERVICE (it is in Docker's default set too). A
# container that drops NET_BIND_SERVICE cannot exec this binary at all (EPERM).
RUN setcap cap_net_bind_service=+ep /switchyard

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /switchyard /usr/local/bin/switchyard
USER 65532:65532
# http, https, admin (/livez, /readyz, /metrics)
EXPOSE 80 443 9901
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["run", "--config", "/etc/switchyard/switchyard.toml"]
