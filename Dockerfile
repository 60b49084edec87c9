# syntax=docker/dockerfile:1
# The mlflow-janitor image: the release binary, with its database client libraries built in, on
# distroless/cc, run as uid 65532.
#
#   docker build -t mlflow-janitor .
#   docker run --rm -e MLFLOW_BACKEND_STORE_URI=postgresql://mlflow@db/mlflow mlflow-janitor purge --dry-run
#
# .ci/check-deploy lints this file (hadolint) and checks its final stage runs as non-root.

FROM rust:1-bookworm AS builder
# The MySQL client library, built from source into the binary, builds with cmake.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cargo registry and target/ live in BuildKit cache mounts, so a rebuild after a source
# change recompiles the crate, not its dependencies. The binary is copied out of the cache mount
# in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin mlflow-janitor \
 && install -D -m 0755 target/release/mlflow-janitor /out/mlflow-janitor

# distroless/cc: glibc, libgcc_s and libstdc++ (all the binary links), CA certificates (for
# sslrootcert=system and the artifact stores), tzdata, and no shell or package manager. Its
# `nonroot` user (65532) is in /etc/passwd, which libpq reads for the default user name.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mlflow-janitor" \
      org.opencontainers.image.description="Purges what MLflow only soft-deletes from its SQL backend store" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0 AND PostgreSQL AND GPL-2.0-only WITH Universal-FOSS-exception-1.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder /out/mlflow-janitor /usr/local/bin/mlflow-janitor
# Numeric, so that Kubernetes' runAsNonRoot can verify it without looking the name up.
USER 65532:65532
ENTRYPOINT ["mlflow-janitor"]
CMD ["--help"]
