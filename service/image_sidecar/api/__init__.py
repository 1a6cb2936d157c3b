"""HTTP handlers: parse and validate a request, call one use case, shape the JSON answer."""
