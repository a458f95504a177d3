"""The HTTP edge: conditional requests and negotiation, the public-representation cache,
middleware, rate limits, idempotency, the OpenAPI document and the dependency aliases."""
