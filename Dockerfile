# Image sidecar: python:3.11-slim. Build: docker build -t picture-this/image-sidecar .
# (deploy/container-check builds it and checks the running container, with Docker or podman.)
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
    && sha256sum /wheels/*.whl > /wheels.sha256

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sidecar \
    && mkdir -p /data/images \
    && chown sidecar /data/images
# The wheels are mounted from the build stage for this one step: no layer keeps them. Their
# digests are copied first, since a build cache does not look into mounts: new wheels, new step.
COPY --from=build /wheels.sha256 /usr/local/share/image-sidecar-wheels.sha256
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-compile /wheels/*.whl
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
