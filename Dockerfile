# oomwatch: a static binary in an otherwise empty image.
# Stage 1 builds it with the Rust toolchain; stage 2 is the binary alone.
#   buildah bud -t localhost/oomwatch:latest .      (or docker/podman build)
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
FROM ${RUST_IMAGE} AS build
# Where the official Rust images keep the toolchain (a builder image without
# one can have it mounted there).
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
WORKDIR /src
COPY . .
RUN RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --bin oomwatch \
      --target x86_64-unknown-linux-gnu --target-dir /out

FROM scratch
COPY --from=build /out/x86_64-unknown-linux-gnu/release/oomwatch /oomwatch
ENTRYPOINT ["/oomwatch"]
CMD ["run"]
