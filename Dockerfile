# Image sidecar: python:3.11-slim. Build: docker build -t picture-this/image-sidecar .
# (deploy/container-check builds it and checks the running container, with Docker or podman.)
FROM python:3.11-slim AS build
# binutils' strip, for the installed libraries below; only this stage has it (unpinned: the
# tool's version reaches nothing in the image but smaller files).
# hadolint ignore=DL3008
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends binutils >/dev/null \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
# Installed here under /install, and left out of it what the service never loads: botocore's
# models of every AWS service but S3 and the credential providers' (STS for assumed roles and
# web identity, SSO, sign-in), test suites, C sources and headers, type stubs, and the symbol
# tables of the extension modules (a fifth of their size; the libraries the wheels vendor in
# *.libs stay whole: patchelf rewrote their load segments, and strip leaves those misaligned).
# deploy/container-check measures the image and exercises pictures, look-alikes, S3 and
# PostgreSQL in it.
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
    && pip install --no-cache-dir --no-compile --prefix=/install /wheels/*.whl \
    && site=$(echo /install/lib/python3.*/site-packages) \
    && find "$site/botocore/data" -mindepth 1 -maxdepth 1 -type d \
        ! -name s3 ! -name sts ! -name sso ! -name sso-oidc ! -name signin -exec rm -r {} + \
    && find "$site" -type d -name tests -prune -exec rm -r {} + \
    && find "$site" -type f \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.c' \
        -o -name '*.h' \) -delete \
    && find "$site" -name '*.libs' -prune -o -type f -name '*.so' -exec strip --strip-unneeded {} +

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sidecar \
    && mkdir -p /data/images \
    && chown sidecar /data/images
COPY --from=build /install /usr/local
# Configuration comes only from the environment; listening beyond loopback requires
# IMAGE_SIDECAR_API_TOKEN, so the container refuses to start without one.
ENV PYTHONUNBUFFERED=1 \
    IMAGE_STORAGE_BASE_DIR=/data/images \
    IMAGE_SIDECAR_HOST=0.0.0.0 \
    IMAGE_SIDECAR_PORT=8080
USER 10001
WORKDIR /data
VOLUME ["/data/images"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('IMAGE_SIDECAR_PORT', '8080'), timeout=2)"]
# One-off migrations: docker run --rm ... image-sidecar migrate
CMD ["image-sidecar", "serve"]
