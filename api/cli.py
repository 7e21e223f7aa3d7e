"""The ``wangge`` command line: a thin adapter over ``db`` and ``geo``.

Errors leave as one plain sentence on stderr and a non-zero exit status.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import secrets
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import uvicorn
from sqlalchemy.orm import Session

from api.app import create_app
from api.security import hash_password
from api.settings import ApiSettings
from db import migrate as migrations
from db.accounts import (
    create_account,
    demo_scopes,
    disable_account,
    list_accounts,
    replace_account,
)
from db.addresses import AddressImportRejected, import_addresses
from db.audit import append
from db.boundaries import (
    BoundaryImportReport,
    BoundaryImportRequest,
    BoundaryRejected,
    import_boundary_file,
)
from db.cluster import Cluster, ClusterState
from db.demo import load_demo, write_demo_register
from db.engine import database_url, embedded_cluster, engine_for, session_scope
from db.registry import ResidentImportRejected, ResidentImportRequest, import_residents
from db.settings import DatabaseSettings
from geo.crs import parse_crs
from geo.errors import WanggeError
from geo.localtime import local_today
from geo.validation import format_report_table

app = typer.Typer(
    help="Wangge 网格: GIS for grid-based community epidemic control.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The embedded PostgreSQL + PostGIS cluster.", no_args_is_help=True)
app.add_typer(db_app, name="db")
import_app = typer.Typer(
    help="Import the address registry or the resident registry.", no_args_is_help=True
)
app.add_typer(import_app, name="import")
users_app = typer.Typer(
    help="Accounts: who may log in, with which role, over which areas.", no_args_is_help=True
)
app.add_typer(users_app, name="users")


def _fail(message: str, *, code: int = 1) -> NoReturn:
    typer.echo(f"wangge: {message}", err=True)
    raise typer.Exit(code)


def _db_url(*, start: bool = True) -> str:
    """The URL every command uses; the embedded cluster is started on demand."""
    return database_url(DatabaseSettings(), start_embedded=start)


# --- wangge db ---------------------------------------------------------------
def _cluster() -> Cluster:
    settings = DatabaseSettings()
    if settings.database_url:
        _fail("DATABASE_URL is set: Wangge uses that server and manages no cluster of its own")
    return embedded_cluster(settings)


@db_app.command("start")
def db_start() -> None:
    """Create (the first time) and start the embedded cluster."""
    cluster = _cluster()
    cluster.start()
    typer.echo(f"running: {cluster.data_dir}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster; its data stays in the data directory."""
    cluster = _cluster()
    cluster.stop()
    typer.echo(f"stopped: {cluster.data_dir}")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded cluster is missing, stopped or running (exit 0 only if running)."""
    if DatabaseSettings().database_url:
        typer.echo("external: DATABASE_URL is set")
        return
    cluster = _cluster()
    state = cluster.state()
    typer.echo(f"{state.value}: {cluster.data_dir}")
    if state is not ClusterState.RUNNING:
        raise typer.Exit(3)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL every command uses (libpq form: psql and QGIS read it)."""
    typer.echo(_db_url(start=False).replace("postgresql+psycopg://", "postgresql://", 1))


# --- schema --------------------------------------------------------------------
@app.command("migrate")
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision (default: head)")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to REVISION instead")] = False,
) -> None:
    """Bring the schema to REVISION with Alembic (upgrade, or --down to downgrade)."""
    url = _db_url()
    if down:
        migrations.downgrade(url, revision=revision)
    else:
        migrations.upgrade(url, revision=revision)
    typer.echo(
        f"schema at {migrations.current_revision(engine_for(url, request_role=None)) or 'base'}"
    )


# --- boundaries ------------------------------------------------------------------
@app.command("load-boundaries")
def load_boundaries(
    file: Annotated[Path, typer.Argument(help="GeoJSON, Shapefile (.shp or .zip) or GeoPackage")],
    level: Annotated[
        str, typer.Option(help="city, county, township, community, grid or microgrid")
    ],
    parent: Annotated[str | None, typer.Option(help="Code of the parent area")] = None,
    crs: Annotated[
        str | None,
        typer.Option(help="wgs84, cgcs2000, gcj02, bd09 or EPSG:n (default: the file's)"),
    ] = None,
    code_field: Annotated[str | None, typer.Option(help="Property holding the code")] = None,
    name_field: Annotated[str | None, typer.Option(help="Property holding the name")] = None,
    kind: Annotated[str, typer.Option(help="land, or sea for grids of vessels")] = "land",
    valid_from: Annotated[
        str | None, typer.Option(help="Date the boundaries take effect (default today)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report; write nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check a boundary file and import it whole, or not at all."""
    settings = ApiSettings()
    request = BoundaryImportRequest.build(
        level=level, parent_code=parent, crs=crs, code_field=code_field,
        name_field=name_field, kind=kind, dry_run=dry_run,
        valid_from=_parse_date(valid_from), max_vertices=settings.max_vertices_per_feature,
    )  # fmt: skip
    try:
        with session_scope(engine_for(_db_url())) as session:
            report = import_boundary_file(
                session, path=file, request=request,
                max_bytes=settings.max_upload_bytes, max_inflated_bytes=settings.max_inflated_bytes,
            )  # fmt: skip
    except BoundaryRejected as rejected:
        _print_report(rejected.report, as_json=as_json)
        _fail(str(rejected))
    _print_report(report, as_json=as_json)


def _print_report(report: BoundaryImportReport, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    typer.echo(report.summary())
    if report.validation.issues:
        typer.echo(format_report_table(report.validation))


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"--valid-from {value!r} is not a date (YYYY-MM-DD)")


# --- registries ------------------------------------------------------------------
CrsOption = Annotated[
    str, typer.Option(help="CRS of coordinates in the file: wgs84, cgcs2000, gcj02, bd09 or EPSG:n")
]


@import_app.command("addresses")
def import_addresses_command(
    file: Annotated[Path, typer.Argument(help="CSV, XLSX or GeoJSON points: one building per row")],
    crs: CrsOption = "wgs84",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report; write nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Load the standard address registry (标准地址库); all rows or none."""
    try:
        with session_scope(engine_for(_db_url())) as session:
            report = import_addresses(session, path=file, crs=parse_crs(crs), dry_run=dry_run)
    except AddressImportRejected as rejected:
        _echo_report(rejected.report.as_dict(), rejected.report.summary(), as_json=as_json)
        for item in rejected.report.rejected:
            typer.echo(f"  row {item['row']}: {'; '.join(item['reasons'])}")
        _fail(str(rejected))
    _echo_report(report.as_dict(), report.summary(), as_json=as_json)


@import_app.command("residents")
def import_residents_command(
    file: Annotated[
        Path, typer.Argument(help="CSV (UTF-8 or GBK) or XLSX with the office's Chinese headers")
    ],
    mode: Annotated[
        str, typer.Option(help="validate, all-or-nothing or per-row")
    ] = "all-or-nothing",
    crs: CrsOption = "wgs84",
    county: Annotated[
        str | None, typer.Option(help="County code (default: the only one with a registry)")
    ] = None,
    rejected_out: Annotated[
        Path | None,
        typer.Option(help="Where to write the rejected rows (default FILE.rejected.csv)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Import households and residents; rejected rows are written to a file to fix."""
    request = ResidentImportRequest.build(
        mode=mode, crs=parse_crs(crs), county_code=county,
        rejected_format=(rejected_out.suffix.lstrip(".") if rejected_out else "csv"),
    )  # fmt: skip
    out = rejected_out or file.with_name(f"{file.stem}.rejected.csv")
    try:
        with session_scope(engine_for(_db_url())) as session:
            report, rejected = import_residents(session, path=file, request=request)
    except ResidentImportRejected as refused:
        _echo_report(refused.report.as_dict(), refused.report.summary(), as_json=as_json)
        _print_rejections(refused.report.rejected)
        _fail(str(refused))
    _echo_report(report.as_dict(), report.summary(), as_json=as_json)
    if rejected is not None:
        out.write_bytes(rejected)
        _print_rejections(report.rejected)
        typer.echo(f"rejected rows with their reasons: {out}")


def _print_rejections(rejected: list[dict[str, object]], *, most: int = 20) -> None:
    for item in rejected[:most]:
        typer.echo(f"  row {item['row']}: {'; '.join(map(str, item['reasons']))}")  # type: ignore[call-overload]
    if len(rejected) > most:
        typer.echo(f"  … and {len(rejected) - most} more")


def _echo_report(body: dict[str, object], summary: str, *, as_json: bool) -> None:
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2, default=str) if as_json else summary)


# --- wangge users ---------------------------------------------------------------
def _cli_audit(session: Session, *, command: str, object_id: str | None = None) -> None:
    """Commands write the audit trail too: the OS account stands for the user."""
    append(session, action="write", user_name=f"cli:{getpass.getuser()}", method="CLI",
           path=f"wangge {command}", object_type="cli", object_id=object_id)  # fmt: skip


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name (no spaces)")],
    role: Annotated[
        str, typer.Option(help="admin, commander, grid_leader, grid_worker or wall_viewer")
    ],
    area: Annotated[
        list[str] | None,
        typer.Option(help="Area code the account works on (repeat for several); not for admin"),
    ] = None,
    personal: Annotated[
        bool, typer.Option("--personal", help="A commander who may read personal data")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create an account. Without --password-stdin the password is asked for (not echoed)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        password_hash = hash_password(password)
    except ValueError as error:
        _fail(str(error))
    try:
        with session_scope(engine_for(_db_url())) as session:
            account = create_account(
                session, name=name, role=role, areas=area or [], password_hash=password_hash,
                can_view_personal=personal, today=local_today(),
            )  # fmt: skip
            _cli_audit(session, command="users add", object_id=account.name)
    except WanggeError as error:
        _fail(str(error))
    typer.echo(
        f"account {account.name}: {account.role} on {', '.join(account.areas) or 'all areas'}"
    )


@users_app.command("list")
def users_list() -> None:
    """Every account: name, role, areas, personal data, disabled."""
    with session_scope(engine_for(_db_url())) as session:
        accounts = list_accounts(session)
    for a in accounts:
        flags = [f for f, on in (("personal", a.can_view_personal), ("DISABLED", a.disabled)) if on]
        typer.echo(f"{a.name}\t{a.role}\t{','.join(a.areas) or '*'}\t{' '.join(flags)}")


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="Login name")]) -> None:
    """Disable an account; its tokens stop working at once."""
    try:
        with session_scope(engine_for(_db_url())) as session:
            disable_account(session, name=name)
            _cli_audit(session, command="users disable", object_id=name)
    except WanggeError as error:
        _fail(str(error))
    typer.echo(f"account {name} disabled")


# --- demo and serving ----------------------------------------------------------
@app.command("demo")
def demo(
    county: Annotated[
        str, typer.Option(help="County code (shipped outline: 445321 新兴县)")
    ] = "445321",
    households: Annotated[int, typer.Option(min=1, help="Number of households")] = 75_000,
    seed: Annotated[int, typer.Option(help="The same seed gives the same county")] = 20200206,
    register_dir: Annotated[
        Path | None,
        typer.Option(
            help="Also write the demo's resident register here, as offices send it (GBK CSV and XLSX)"
        ),
    ] = None,
    live: Annotated[
        bool,
        typer.Option(help="Move the demo's dates so that today (in China) is its reference date"),
    ] = False,
) -> None:
    """Build the synthetic demo county on a real county outline (replaces an earlier demo).

    Its epidemic is that of 2020-02-06 (the round in progress, quarantines,
    today's temperature checks); ``--live`` moves every date so that day is today.
    """
    url = _db_url()
    migrations.upgrade(url)
    summary = load_demo(
        engine_for(url, request_role=None), county_code=county, households=households,
        seed=seed, today=local_today() if live else None,
    )  # fmt: skip
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    _demo_accounts(url, county_code=county)
    if register_dir is not None:
        for path in write_demo_register(
            register_dir, county_code=county, households=households, seed=seed
        ):
            typer.echo(f"register: {path}")


DEMO_ACCOUNT_NAMES = {
    "admin": "admin", "commander": "commander", "grid_leader": "leader",
    "grid_worker": "worker", "wall_viewer": "wall",
}  # fmt: skip


def _demo_accounts(url: str, *, county_code: str) -> None:
    """One account of each role on the demo county, with fresh passwords,
    printed and kept in var/demo-accounts.txt (readable by its owner only)."""
    lines = []
    with session_scope(engine_for(url)) as session:
        scopes = demo_scopes(session, county_code=county_code, today=local_today())
        for role, name in DEMO_ACCOUNT_NAMES.items():
            password = secrets.token_urlsafe(9)
            replace_account(
                session, name=name, role=role, areas=scopes[role],
                password_hash=hash_password(password), can_view_personal=role == "commander",
                today=local_today(),
            )  # fmt: skip
            lines.append(
                f"{name:<10} {password:<14} {role:<12} {','.join(scopes[role]) or 'all areas'}"
            )
        _cli_audit(session, command="demo (accounts)")
    path = DatabaseSettings().data_dir.parent / "demo-accounts.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text("name       password       role         areas\n" + "\n".join(lines) + "\n")
    typer.echo("demo accounts (also in " + str(path) + "):")
    for line in lines:
        typer.echo("  " + line)


@app.command("serve")
def serve(
    port: Annotated[int | None, typer.Option(help="TCP port (default WANGGE_PORT or 8000)")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1)")] = None,
) -> None:
    """Serve the API and the map (starting the embedded database if needed)."""
    settings = ApiSettings()
    application = create_app()  # first: a bad basemap setting stops here, with the reason
    migrations.upgrade(_db_url())
    uvicorn.run(application, host=host or settings.host, port=port or settings.port, log_level="info")


def main() -> None:
    """Entry point: domain errors become one line on stderr and exit status 1."""
    try:
        app()
    except WanggeError as error:
        typer.echo(f"wangge: {error}", err=True)
        sys.exit(1)
