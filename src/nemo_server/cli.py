"""`nemo`: start the platform, see its health, manage users, and the service commands."""

from __future__ import annotations

import importlib
import logging
import secrets
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from nemo_server.commands import COMMAND_MODULES
from nemo_server.common.services import SERVICES, existing_services
from nemo_server.common.settings import CommonSettings

app = typer.Typer(help="Nemo Server: a local-first AI platform.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users (works whether or not the platform is running).")
app.add_typer(user_app, name="user")
console = Console(stderr=True)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="Service to run, e.g. gateway.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (default: the service's seed port).")
    ] = None,
) -> None:
    """Run one service in this process (what `nemo up` runs for each service)."""
    import uvicorn

    from nemo_server.common.logs import configure_logging

    spec = SERVICES.get(service)
    if spec is None:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    common = CommonSettings()
    configure_logging(service, common.log_level, common.log_json)
    uvicorn.run(
        spec.factory,
        factory=True,
        host=host,
        port=port or common.port_of(service),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def up(
    only: Annotated[
        str | None, typer.Option(help="Comma-separated subset, e.g. gateway,llm.")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1 keeps it local).")
    ] = "127.0.0.1",
    quiet: Annotated[bool, typer.Option(help="Do not echo service logs to the console.")] = False,
) -> None:
    """Start every installed service as its own supervised process."""
    from nemo_server.common.logs import configure_logging
    from nemo_server.supervisor import Supervisor

    common = CommonSettings()
    configure_logging("nemo-up", common.log_level, common.log_json)
    specs = existing_services()
    if only:
        wanted = {name.strip() for name in only.split(",") if name.strip()}
        unknown = wanted - set(SERVICES)
        if unknown:
            raise typer.BadParameter(
                f"unknown service(s): {', '.join(sorted(unknown))}", param_hint="--only"
            )
        missing = wanted - {s.name for s in specs}
        if missing:
            raise typer.BadParameter(
                f"not installed: {', '.join(sorted(missing))}", param_hint="--only"
            )
        specs = [s for s in specs if s.name in wanted]
    common.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _log_to_file(common.data_dir / "logs" / "supervisor.log")
    password = _bootstrap_admin() if any(s.name == "gateway" for s in specs) else None
    supervisor = Supervisor(
        specs, host, common.data_dir / "logs", common.port_offset, echo=not quiet
    )
    supervisor.start()
    _wait_healthy(specs, host)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    has_gateway = any(s.name == "gateway" for s in specs)
    gateway_port = common.port_of("gateway")
    lines = [
        f"Nemo Server is up: http://{url_host}:{gateway_port}"
        if has_gateway
        else "Services started (no gateway)."
    ]
    lines.append(f"Data: {common.data_dir}   Logs: {common.data_dir / 'logs'}")
    if password:
        lines.append(
            f"Admin account created: user [bold]admin[/bold], password [bold]{password}[/bold]"
        )
        lines.append("This password is shown once. Log in with `nemo login`.")
    else:
        lines.append("Log in with `nemo login` (or an API key as a Bearer token).")
    lines.append("Ctrl-C stops everything.")
    console.print(Panel("\n".join(lines), title="nemo up"))
    supervisor.wait()
    console.print("stopped")


def _log_to_file(path: Path) -> None:
    """Supervisor events (starts, crashes, restarts) also go to the data dir."""
    from nemo_server.common.context import RequestIdFilter

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("nemo").addHandler(handler)


def _bootstrap_admin() -> str | None:
    from nemo_server.gateway.app import build_auth_service, open_database
    from nemo_server.gateway.settings import GatewaySettings

    settings = GatewaySettings()
    db = open_database(settings)
    try:
        mounted = settings.common.secrets_dir / "admin_password"
        return build_auth_service(settings, db).bootstrap_admin(
            settings.admin_username, mounted.read_text().strip() if mounted.is_file() else None
        )
    finally:
        db.dispose()


def _probe(url: str) -> tuple[str, str]:
    try:
        health = httpx.get(f"{url}/healthz", timeout=1.0)
        if health.status_code != 200:
            return "unhealthy", f"healthz {health.status_code}"
        ready = httpx.get(f"{url}/readyz", timeout=5.0)
        return ("healthy" if ready.status_code == 200 else "not ready"), ready.text[:120]
    except httpx.HTTPError as exc:
        return "down", type(exc).__name__


def _wait_healthy(specs: list, host: str, timeout_s: float = 120.0) -> None:
    common = CommonSettings()
    deadline = time.monotonic() + timeout_s
    pending = {s.name for s in specs}
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            if _probe(common.url_for(name))[0] == "healthy":
                pending.discard(name)
        time.sleep(0.3)
    if pending:
        console.print(
            f"[yellow]still starting after {timeout_s:.0f}s: {', '.join(sorted(pending))}[/yellow]"
        )


@app.command()
def status() -> None:
    """Health of every installed service."""
    common = CommonSettings()
    table = Table("service", "port", "url", "state", "detail")
    all_ok = True
    for spec in existing_services():
        url = common.url_for(spec.name)
        state, detail = _probe(url)
        all_ok &= state == "healthy"
        color = {"healthy": "green", "down": "red"}.get(state, "yellow")
        table.add_row(
            spec.name, str(common.port_of(spec.name)), url, f"[{color}]{state}[/{color}]", detail
        )
    Console().print(table)
    raise typer.Exit(0 if all_ok else 1)


@app.command()
def login(
    username: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Log in to the gateway; the CLI keeps the tokens under the data dir (mode 0600)."""
    from nemo_server.commands.http import fail_on_error, gateway_url, save_credentials

    response = httpx.post(
        f"{gateway_url()}/v1/auth/token",
        data={"username": username, "password": password},
        timeout=30,
    )
    fail_on_error(response)
    save_credentials(response.json())
    console.print(f"logged in as {username}")


@user_app.command("create")
def user_create(
    username: str,
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    password: Annotated[str | None, typer.Option(help="Password (generated when omitted).")] = None,
) -> None:
    """Create a user."""
    service, db = _auth_service()
    generated = password or secrets.token_urlsafe(12)
    try:
        user = service.create_user(username, generated, "admin" if admin else "user")
    except Exception as exc:  # NemoError with a user-facing message
        console.print(f"[red]{getattr(exc, 'message', exc)}[/red]")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    console.print(f"created {user.role} {user.username} ({user.id})")
    if password is None:
        console.print(f"password: {generated}")


@user_app.command("list")
def user_list() -> None:
    """List users."""
    service, db = _auth_service()
    table = Table("id", "username", "role", "disabled", "created")
    for user in service.store.list_users():
        table.add_row(
            user.id, user.username, user.role, str(user.disabled), str(user.created_at)[:19]
        )
    db.dispose()
    Console().print(table)


@user_app.command("disable")
def user_disable(
    username: str,
    enable: Annotated[bool, typer.Option("--enable", help="Enable instead.")] = False,
) -> None:
    """Disable a user: their tokens and sessions stop working at once."""
    service, db = _auth_service()
    try:
        user = service.store.user_by_name(username)
        if user is None:
            console.print(f"[red]no user {username!r}[/red]")
            raise typer.Exit(1)
        service.update_user(user.id, disabled=not enable)
    finally:
        db.dispose()
    console.print(f"{'enabled' if enable else 'disabled'} {username}")


def _auth_service():  # type: ignore[no-untyped-def]
    from nemo_server.gateway.app import build_auth_service, open_database
    from nemo_server.gateway.settings import GatewaySettings

    settings = GatewaySettings()
    db = open_database(settings)
    return build_auth_service(settings, db), db


def _register_service_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"nemo_server.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"nemo_server.commands.{name}":
                continue
            raise
        module.register(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    _register_service_commands()
    app(prog_name="nemo")


if __name__ == "__main__" and sys.argv:
    main()
