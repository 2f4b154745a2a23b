"""Authentication: API keys (hashed at rest), identities and the middleware that checks them."""
