"""The command line: the typer app, rendering, questions, an error's one line."""
