"""The ensemble's tensor contract (model_repository/README.md) on the client side."""

from __future__ import annotations

from tritonclient.grpc import service_pb2

from api.backend.tensors import (
    add_input,
    decode_array,
    decode_bytes,
    first_int,
    outputs_by_name,
)
from api.backend.types import GenerationChunk, GenerationRequest, TokenLogprob

FINAL_RESPONSE = "triton_final_response"
ENABLE_EMPTY_FINAL = "triton_enable_empty_final_response"


def build_generation_request(request: GenerationRequest) -> service_pb2.ModelInferRequest:
    """A ModelInferRequest for the ensemble; only tensors that differ from defaults are sent."""
    message = service_pb2.ModelInferRequest(model_name=request.triton_model, id=request.request_id)
    # Decoupled models end a request with an empty response flagged final only on request.
    message.parameters[ENABLE_EMPTY_FINAL].bool_param = True
    params = request.params
    if request.messages_json is not None:
        add_input(message, "messages", "BYTES", [request.messages_json])
    else:
        add_input(message, "text_input", "BYTES", [request.prompt or ""])
    add_input(message, "max_tokens", "INT32", [params.max_tokens])
    add_input(message, "temperature", "FP32", [params.temperature])
    add_input(message, "top_p", "FP32", [params.top_p])
    add_input(message, "top_k", "INT32", [params.top_k])
    # Always streamed from Triton, also for a non-streamed reply (collected by the API): both
    # then see the same tokens, stops and token counts, as in vLLM.
    add_input(message, "stream", "BOOL", [True])
    add_input(message, "return_num_input_tokens", "BOOL", [True])
    add_input(message, "return_num_output_tokens", "BOOL", [True])
    # Without it a non-streamed reply would repeat the prompt (TensorRT-LLM's default).
    add_input(message, "exclude_input_in_output", "BOOL", [True])
    _add_optional_inputs(message, request)
    for name in requested_outputs(request):
        message.outputs.add().name = name
    return message


def requested_outputs(request: GenerationRequest) -> list[str]:
    """The outputs this reply needs. Without a list Triton sends every output of the ensemble
    with every token (per-token strings, log probabilities), and each one had to be serialized,
    sent and parsed only to be dropped."""
    names = ["text_output", "text_pending", "num_input_tokens", "num_output_tokens"]
    params = request.params
    if params.return_log_probs or params.top_logprobs:
        names += ["output_tokens", "output_token_logprobs"]
    if params.top_logprobs:
        names += ["top_logprob_tokens", "top_logprob_values"]
    return names


def _add_optional_inputs(
    message: service_pb2.ModelInferRequest, request: GenerationRequest
) -> None:
    params = request.params
    if params.fit_context is not None:
        add_input(message, "fit_max_tokens", "BOOL", [True])
    if params.stop:
        add_input(message, "stop_words", "BYTES", list(params.stop))
    if params.seed is not None:
        add_input(message, "seed", "UINT64", [params.seed % 2**64])
    if params.min_tokens:
        add_input(message, "min_tokens", "INT32", [params.min_tokens])
    if params.presence_penalty:
        add_input(message, "presence_penalty", "FP32", [params.presence_penalty])
    if params.frequency_penalty:
        add_input(message, "frequency_penalty", "FP32", [params.frequency_penalty])
    if params.repetition_penalty != 1.0:
        add_input(message, "repetition_penalty", "FP32", [params.repetition_penalty])
    if params.return_log_probs:
        add_input(message, "return_log_probs", "BOOL", [True])
    if params.top_logprobs:
        add_input(message, "return_generation_logits", "BOOL", [True])
    if params.logit_bias:
        ids, weights = zip(*params.logit_bias, strict=True)
        add_input(message, "logit_bias_ids", "INT32", list(ids))
        add_input(message, "logit_bias_weights", "FP32", list(weights))
    if params.guide_type is not None:
        add_input(message, "guided_decoding_guide_type", "BYTES", [params.guide_type])
        add_input(message, "guided_decoding_guide", "BYTES", [params.guide or ""])
    if request.tools_json is not None:
        add_input(message, "tools", "BYTES", [request.tools_json])


_LOGPROB_OUTPUTS = frozenset({"output_tokens", "output_token_logprobs"})


def parse_generation_response(response: service_pb2.ModelInferResponse) -> GenerationChunk:
    """One streamed response as a chunk; Triton may send each step's outputs separately.

    Called once per token: one pass over the outputs, no numpy for the two counts.
    """
    chunk = GenerationChunk(final=is_final(response))
    logprob_outputs = 0
    for output, raw in zip(response.outputs, response.raw_output_contents, strict=False):
        name = output.name
        if name == "text_output":
            chunk.text = "".join(e.decode("utf-8") for e in decode_bytes(raw))
        elif name == "text_pending":
            chunk.pending = "".join(e.decode("utf-8") for e in decode_bytes(raw))
        elif name == "num_output_tokens":
            count = first_int(output.datatype, raw)
            chunk.completion_tokens = count if count is not None else 0
        elif name == "num_input_tokens":
            chunk.prompt_tokens = first_int(output.datatype, raw)
        elif name in _LOGPROB_OUTPUTS:
            logprob_outputs += 1
    if logprob_outputs == len(_LOGPROB_OUTPUTS):
        chunk.logprobs = _token_logprobs(response, outputs_by_name(response))
    return chunk


class HeldBackTail:
    """Ends a stream's text the way it would end if decoded at once.

    Postprocessing holds back a character whose bytes have not all arrived and reports it as
    ``pending`` with every response; only the client learns where the stream ends, so the last
    pending tail goes onto the final chunk (a reply cut inside a character ends with U+FFFD,
    as OpenAI's do, instead of losing that text).
    """

    def __init__(self) -> None:
        self._tail = ""

    def settle(self, chunk: GenerationChunk) -> GenerationChunk:
        if chunk.pending is not None:
            self._tail = chunk.pending
        if chunk.final and self._tail:
            chunk.text += self._tail
            self._tail = ""
        return chunk


def _token_logprobs(
    response: service_pb2.ModelInferResponse, raw: dict[str, bytes]
) -> list[TokenLogprob]:
    """Per-token bytes and log probabilities; alternatives when the engine returned them."""
    tokens = decode_bytes(raw["output_tokens"])
    values = decode_array(response, "output_token_logprobs")
    logprobs = [] if values is None else [float(v) for v in values.reshape(-1)]
    top_values = decode_array(response, "top_logprob_values")
    width = 0 if top_values is None or top_values.ndim < 2 else int(top_values.shape[-1])
    top_tokens = decode_bytes(raw.get("top_logprob_tokens", b"")) if width else []
    flat_values = [] if top_values is None else [float(v) for v in top_values.reshape(-1)]
    result = []
    for index, (token, logprob) in enumerate(zip(tokens, logprobs, strict=False)):
        row = slice(index * width, (index + 1) * width)
        top = tuple(zip(top_tokens[row], flat_values[row], strict=False))
        result.append(TokenLogprob(token=token, logprob=logprob, top=top))
    return result


def is_final(response: service_pb2.ModelInferResponse) -> bool:
    parameter = response.parameters.get(FINAL_RESPONSE)
    return parameter is not None and parameter.bool_param
