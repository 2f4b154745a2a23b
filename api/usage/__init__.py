"""Usage and cost: per-request metering, the batched lossless writer, roll-ups, prices."""
