"""Legacy text completions: starting a run (``run``) and rendering ``text_completion`` objects."""
