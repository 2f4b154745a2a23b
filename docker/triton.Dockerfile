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
# TRITON_LLM_MODEL_DIR to a Hugging Face checkpoint (llmapi) or an engine directory (trtllm)
# and TRITON_TOKENIZER_DIR to its tokenizer.
#
# Versions (Triton's docs/introduction/compatibility.md, triton-inference-server/server
# 0f963c9a8c6913aa4cd9b57ee04f9c2b76ee8d2a, "Container Name: trtllm-python-py3"):
# - TRITON_VERSION 26.07 ships TensorRT-LLM 1.2.1, the newest trtllm-python-py3 tag listed: its
#   LLM API runs on the PyTorch backend, which the default root llm_llmapi
#   (inference/llmapi_engine.py) drives.
# - LEGACY_TRITON_VERSION: the newest tag whose TensorRT-LLM still has the C++ tensorrtllm
#   backend (removed on TensorRT-LLM main in July 2026, PR #15907, after the 1.2 line) with every
#   parameter and tensor llm_trtllm declares (tokenizer_dir, guided_decoding_backend and
#   xgrammar_tokenizer_info_path since tensorrtllm_backend v0.19.0, i.e. 25.05 and later; see
#   launcher/config_check.py TENSORRTLLM_BACKEND). Legacy image:
#     docker build --build-arg TRITON_VERSION=26.07 --build-arg TRITON_LLM_BACKEND=trtllm ...
#   25.01 (TensorRT-LLM 0.17) is too old: seeds, min_tokens and response_format are ignored there.
ARG TRITON_VERSION=26.07
ARG LEGACY_TRITON_VERSION=26.07
FROM nvcr.io/nvidia/tritonserver:${TRITON_VERSION}-trtllm-python-py3

# llmapi (default): model_repository/llm_llmapi; trtllm: the legacy engine root.
ARG TRITON_LLM_BACKEND=llmapi
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TRITON_SERVER_DIR=/opt/tritonserver \
    TRITON_LLM_BACKEND=${TRITON_LLM_BACKEND}

WORKDIR /opt/gateway
COPY pyproject.toml README.md ./
COPY api/ api/
COPY inference/ inference/
COPY launcher/ launcher/
COPY model_repository/ model_repository/
COPY engines/ engines/
COPY scripts/build_engines.py scripts/gpu_check.sh scripts/gpu_smoke.py scripts/

# NVIDIA's builds of torch, TensorRT, TensorRT-LLM and ModelOpt stay as they are (pinned while
# installing), so the Python-backend stub and the tensorrtllm backend see the libraries they
# were built with.
# Editable: the launcher resolves the templates relative to this directory.
RUN pip list --format=freeze \
      | grep -iE '^(torch|tensorrt|tensorrt[-_]llm|nvidia[-_]modelopt|transformers|tokenizers|xgrammar)==' \
      > /tmp/nvidia-pins.txt \
    && pip install -c /tmp/nvidia-pins.txt -e ".[models]" \
    && python3 -c "import inference.preprocessing, inference.postprocessing, launcher.config_check, launcher.llmapi_options"

EXPOSE 8000 8001 8002
CMD ["python3", "-m", "launcher"]
