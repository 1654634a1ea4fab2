# Local stand-in for redis:7, for hosts that cannot pull from Docker Hub. Built by scripts/base-images.sh on
# top of a Debian bookworm root made with debootstrap; never used where the official image can be pulled.
# Debian bookworm ships Redis 7.0. Laid out like the official image: redis-server on PATH, data in /data
# (the working directory, where docker-compose.yml mounts the redis-data volume), run as the user redis with
# the official image's uid and gid (999).
ARG DEBIAN_IMAGE=ssa-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
LABEL org.ssa-service.stand-in="redis:7" \
      org.opencontainers.image.description="Debian bookworm + redis-server 7.0: a local stand-in made by scripts/base-images.sh"
# Unpinned on purpose, like the official image: bookworm's current redis-server and its security fixes.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid redis --home-dir /data --no-create-home redis \
    && apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data /usr/local/etc/redis \
    && chown redis:redis /data
WORKDIR /data
USER 999:999
EXPOSE 6379
CMD ["redis-server"]
