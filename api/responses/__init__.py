"""The Responses API (``/v1/responses``): OpenAI's Responses over the chat generation pipeline."""
