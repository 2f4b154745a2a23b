"""Wire schemas: the OpenAI request and response shapes, in pydantic only."""
