"""Rate limits and quotas: planning the counters, checking them atomically, the headers."""
