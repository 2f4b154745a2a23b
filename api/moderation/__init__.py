"""Content filtering: the ``ContentFilter`` hook on prompts and replies, and moderations."""
