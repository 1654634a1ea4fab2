# Local stand-in for python:3.11-slim-bookworm, for hosts that cannot pull from Docker Hub.
# Built by scripts/base-images.sh on top of a Debian bookworm root made with debootstrap; never used where the
# official image can be pulled. Debian bookworm ships Python 3.11, the version the official image has.
# The build context is a folder that holds only ca-certificates.crt: the host's CA bundle, which becomes the
# system bundle (pip and Python's ssl trust it), so that PyPI answers where the network inspects TLS.
ARG DEBIAN_IMAGE=ssa-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
LABEL org.ssa-service.stand-in="python:3.11-slim-bookworm" \
      org.opencontainers.image.description="Debian bookworm + python3.11: a local stand-in made by scripts/base-images.sh"
ENV LANG=C.UTF-8 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# Unpinned on purpose, like the official image: bookworm's current python3.11 and its security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip libgomp1 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
