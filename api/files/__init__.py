"""Files: uploaded batch inputs and the output files batches write."""
