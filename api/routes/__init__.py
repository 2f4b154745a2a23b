"""HTTP routes: parse -> translate -> call the backend -> render."""
