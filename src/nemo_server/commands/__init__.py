"""CLI command groups, one module per service, each exposing `register(app: typer.Typer)`.

They talk to the platform through the gateway over HTTP (see `nemo_server.commands.http`),
never by importing a service.
"""

COMMAND_MODULES = ("llm", "transcription", "rag", "emotion", "ml", "coordinator", "insights")
