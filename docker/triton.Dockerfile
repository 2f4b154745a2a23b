# syntax=docker/dockerfile:1
# Triton with the TensorRT-LLM backend (NVIDIA's published image) plus this project's
# Python-backend models (preprocessing, postprocessing, embedding) and its tools
# (launcher, scripts/build_engines.py). Build from the repository root:
#
#   docker build -f docker/triton.Dockerfile -t REGISTRY/triton-openai-gateway/triton:0.1.0 .
#
# The Helm chart runs `tritonserver --model-repository=/models/<group>/model_repository` on a
# repository written by build_engines.py. Without arguments the image renders the project's
# templates itself (`python3 -m launcher`, TRITON_* settings, see launcher/settings.py): set
# TRITON_LLM_MODEL_DIR to an engine directory and TRITON_TOKENIZER_DIR to its tokenizer.
ARG TRITON_VERSION=25.01
FROM nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-trtllm-python-py3

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TRITON_SERVER_DIR=/opt/tritonserver \
    TRITON_LLM_BACKEND=trtllm

WORKDIR /opt/gateway
COPY pyproject.toml README.md ./
COPY api/ api/
COPY inference/ inference/
COPY launcher/ launcher/
COPY model_repository/ model_repository/
COPY engines/ engines/
COPY scripts/build_engines.py scripts/gpu_check.sh scripts/

# NVIDIA's builds of torch, TensorRT and TensorRT-LLM stay as they are (pinned while installing),
# so the Python-backend stub and the tensorrtllm backend see the libraries they were built with.
# Editable: the launcher resolves the templates relative to this directory.
RUN pip list --format=freeze \
      | grep -iE '^(torch|tensorrt|tensorrt[-_]llm|transformers|tokenizers)==' > /tmp/nvidia-pins.txt \
    && pip install -c /tmp/nvidia-pins.txt -e ".[models]" \
    && python3 -c "import inference.preprocessing, inference.postprocessing, launcher.config_check"

EXPOSE 8000 8001 8002
CMD ["python3", "-m", "launcher"]
