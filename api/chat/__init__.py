"""Chat completions: starting a run (``run``) and rendering its objects and chunks (``replies``)."""
