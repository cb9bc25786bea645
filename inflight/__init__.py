"""inflight: an in-flight RPC latency probe for oslo.messaging services."""
