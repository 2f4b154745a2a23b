"""The generation pipeline that chat, legacy completions and responses share.

A request is translated into backend requests (``translate``), each choice's token stream is
assembled into text with stops, counts and finish reasons (``assembly``, ``stops``, ``choices``),
and tool calls and log probabilities are read out of it (``tool_calls``, ``tool_stream``,
``logprobs``). Each endpoint's package (``api.chat``, ``api.completions``) renders its own wire
format from the result.
"""
