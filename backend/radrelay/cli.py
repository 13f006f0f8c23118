"""``radrelay``: serve, worker, gateway, migrate, demo, synth, hospitals, users, rules,
templates.

Every command reads the same ``RADRELAY_*`` settings, so one configured environment drives the
API, the workers, the DICOM gateway and these administration commands alike.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from radrelay.config import Settings

app = typer.Typer(
    no_args_is_help=True, help="RadRelay: teleradiology for a virtual imaging center."
)
hospitals_app = typer.Typer(no_args_is_help=True, help="Hospitals and their DICOM AE titles.")
users_app = typer.Typer(no_args_is_help=True, help="Users and roles.")
app.add_typer(hospitals_app, name="hospitals")
app.add_typer(users_app, name="users")
rules_app = typer.Typer(no_args_is_help=True, help="Routing rules (worklist_rules/).")
app.add_typer(rules_app, name="rules")
templates_app = typer.Typer(no_args_is_help=True, help="Report templates (reports_templates/).")
app.add_typer(templates_app, name="templates")
reports_app = typer.Typer(no_args_is_help=True, help="Signed report PDFs.")
app.add_typer(reports_app, name="reports")


def _settings(**overrides: object) -> Settings:
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return settings


def _long_running() -> None:
    """For the commands that serve: thread stacks on SIGUSR1 (kit/diagnostics.py)."""
    from radrelay.kit import diagnostics

    diagnostics.dump_threads_on_sigusr1()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="HTTP address.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
    dicom_port: Annotated[int | None, typer.Option(help="DICOM port (C-STORE, C-ECHO).")] = None,
    dicom: Annotated[bool, typer.Option(help="Run the DICOM gateway in this process.")] = True,
) -> None:
    """Serve the API, the UI, the DICOM gateway and (without Redis) the jobs."""
    import uvicorn

    from radrelay.app import create_app

    settings = _settings(host=host, port=port, dicom_port=dicom_port, dicom_enabled=dicom)
    _long_running()
    _require_schema(settings)
    _require_rules(settings)
    _require_templates(settings)
    uvicorn.run(
        create_app(settings, with_gateway=True),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


@app.command()
def gateway(
    host: Annotated[str | None, typer.Option(help="DICOM address.")] = None,
    port: Annotated[int | None, typer.Option(help="DICOM port.")] = None,
) -> None:
    """Run only the DICOM gateway (scale-out: several gateways behind one address)."""
    from radrelay import worker
    from radrelay.ingest.gateway import DicomGateway
    from radrelay.kit import diagnostics
    from radrelay.kit.runtime import Runtime

    settings = _settings(dicom_host=host, dicom_port=port)
    _long_running()
    _require_schema(settings)

    async def main() -> None:
        diagnostics.dump_tasks_on_sigusr2()
        runtime = Runtime(settings)
        await runtime.start(
            run_jobs_here=True, functions=worker.FUNCTIONS, periodic=worker.periodic(settings)
        )
        gw = DicomGateway(runtime, asyncio.get_running_loop())
        gw.start(settings.dicom_host, settings.dicom_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await asyncio.to_thread(gw.stop)
        await runtime.close()

    asyncio.run(main())


@app.command()
def worker(
    check: Annotated[
        bool, typer.Option(help="Only check that a worker reported health recently (exit 0/1).")
    ] = False,
) -> None:
    """Run an arq worker (scale-out; needs RADRELAY_REDIS_URL)."""
    from arq.worker import check_health, run_worker

    from radrelay.worker import worker_settings

    settings = _settings()
    if check:
        raise typer.Exit(check_health(worker_settings(settings, outlast_outages=False)))  # type: ignore[arg-type]
    _require_schema(settings)
    _require_rules(settings)
    _require_templates(settings)
    _long_running()
    run_worker(worker_settings(settings))  # type: ignore[arg-type]


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option(help="Downgrade to the revision instead.")] = False,
) -> None:
    """Bring the database schema to a revision (default: the newest)."""
    from radrelay.kit import migrate as migrations

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if down:
        migrations.downgrade(settings.resolved_database_url, revision)
    else:
        migrations.upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {'revision ' + revision if down else 'the newest revision'}")


def _require_rules(settings: Settings) -> None:
    """Rules are validated before anything starts: a bad rules file stops the process with
    what to fix, rather than routing by half a policy."""
    from radrelay.routing.rules import RulesError, load_rules

    try:
        load_rules(settings.rules_dir)
    except RulesError as exc:
        typer.echo(f"error: the rules in {settings.rules_dir} are not valid:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None


@rules_app.command("check")
def rules_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Rules directory (default: RADRELAY_RULES_DIR).")
    ] = None,
) -> None:
    """Validate the rule files and run their golden cases; exit 1 listing every problem."""
    from radrelay.routing.rules import check

    folder = directory or _settings().rules_dir
    problems = check(folder)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{folder}: rules valid, golden cases pass")


def _require_templates(settings: Settings) -> None:
    """Templates are validated before anything starts, as rules are: a broken template stops
    the process with what to fix, rather than failing a reader halfway through a report."""
    from radrelay.reporting.templates import TemplatesError, load_templates

    try:
        load_templates(settings.templates_dir)
    except TemplatesError as exc:
        typer.echo(f"error: the templates in {settings.templates_dir} are not valid:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None


@templates_app.command("check")
def templates_check(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Templates directory (default: RADRELAY_TEMPLATES_DIR)."),
    ] = None,
) -> None:
    """Validate the template files and run their golden cases; exit 1 listing every problem."""
    from radrelay.reporting.templates import check

    folder = directory or _settings().templates_dir
    problems = check(folder)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{folder}: templates valid, golden cases pass")


@templates_app.command("import-mrrt")
def templates_import_mrrt(
    file: Annotated[Path, typer.Argument(help="An IHE MRRT template (HTML5, e.g. RadReport).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder to write it into (default: RADRELAY_TEMPLATES_DIR)."),
    ] = None,
    template_id: Annotated[
        str | None, typer.Option("--id", help="The template's id (default: from its title).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace a file of the same name.")] = False,
) -> None:
    """Convert an MRRT template into a draft YAML template, saying what was left out."""
    from radrelay.reporting.mrrt import MrrtError, import_mrrt, to_yaml

    folder = out or _settings().templates_dir
    try:
        imported = import_mrrt(file.read_bytes(), template_id=template_id)
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    except MrrtError as exc:
        typer.echo(f"error: {file}: {exc}", err=True)
        raise typer.Exit(1) from None
    target = folder / f"{imported.template.id}.yaml"
    if target.exists() and not force:
        typer.echo(
            f"error: {target} exists; pass --force to replace it or --id to rename", err=True
        )
        raise typer.Exit(1)
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(to_yaml(imported.template), encoding="utf-8")
    for note in imported.notes:
        typer.echo(f"note: {note}", err=True)
    fields = sum(1 for _ in imported.template.fields())
    typer.echo(
        f"wrote {target}: {len(imported.template.sections)} sections, {fields} fields "
        f"(draft; run `radrelay templates check {folder}` after editing it)"
    )


@app.command("simulate")
def simulate_command(
    rules_dir: Annotated[
        Path | None, typer.Option(help="Rules directory (default: RADRELAY_RULES_DIR).")
    ] = None,
    arrivals: Annotated[
        Path | None,
        typer.Option(help="CSV of arrivals to replay instead of the built-in Poisson model."),
    ] = None,
    roster: Annotated[
        Path | None, typer.Option(help="Roster YAML (default: the built-in roster).")
    ] = None,
    hours: Annotated[
        float | None, typer.Option(help="Hours of Poisson arrivals from midnight (default 24).")
    ] = None,
    scale: Annotated[
        float | None, typer.Option(help="Multiply the Poisson arrival rates (default 1).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same numbers).")] = 1,
    policy: Annotated[
        list[str],
        typer.Option(
            help="push, pool, rules, pool-routine or pool-stat (repeatable; default push, pool "
            "and rules)."
        ),
    ] = [],  # noqa: B006
    cherry_pick: Annotated[
        float,
        typer.Option(help="Chance that a reader claiming from a pool takes its easiest case."),
    ] = 0.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON, not markdown.")] = False,
) -> None:
    """Replay a day of arrivals against a roster through the routing engine, once per policy:
    turnaround percentiles, SLA breaches and workload fairness (docs/simulation.md)."""
    import json

    from radrelay.routing.rules import RulesError, load_rules
    from radrelay.routing.simulate import SimulationInputError, run

    settings = _settings()
    folder = rules_dir or settings.rules_dir
    try:
        rules = load_rules(folder)
    except RulesError as exc:
        typer.echo(f"error: the rules in {folder} are not valid:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1) from None
    try:
        result = run(
            rules,
            rules_label=_shown(folder),
            arrivals_path=arrivals,
            roster_path=roster,
            hours=hours,
            scale=scale,
            seed=seed,
            policies=policy,
            cherry_pick=cherry_pick,
            watch_seconds=settings.sla_watch_seconds,
        )
    except SimulationInputError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(result.to_markdown())


def _shown(path: Path) -> str:
    """The path relative to the working directory when it is inside it, else absolute."""
    resolved = path.resolve()
    return (
        str(resolved.relative_to(Path.cwd()))
        if resolved.is_relative_to(Path.cwd())
        else str(resolved)
    )


def _require_schema(settings: Settings) -> None:
    from radrelay.kit import migrate as migrations

    problem = migrations.schema_problem(settings.resolved_database_url)
    if problem:
        typer.echo(f"error: {problem}. Run `radrelay migrate` first.", err=True)
        raise typer.Exit(2)


@hospitals_app.command("create")
def hospitals_create(
    code: Annotated[str, typer.Argument(help="Short unique code, e.g. QSX-PH.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    ae: Annotated[list[str], typer.Option(help="Calling AE title (repeatable).")] = [],  # noqa: B006
    address: Annotated[
        list[str], typer.Option(help="Allowed source address or CIDR for the AE titles.")
    ] = [],  # noqa: B006
) -> None:
    """Create a hospital or update it (idempotent); AE titles are added."""
    from radrelay.hospitals.schemas import HospitalCreate
    from radrelay.hospitals.service import hospitals

    settings = _settings()
    data = _validated(
        HospitalCreate,
        code=code,
        name=name,
        ae_titles=[{"ae_title": a, "source_addresses": address} for a in ae],
    )

    async def run() -> None:
        async with _db(settings).unit_of_work() as session:
            hospital, created = await hospitals.create_or_update(session, data)
            titles = ", ".join(sorted(a.ae_title for a in hospital.ae_titles)) or "none"
        typer.echo(f"{'created' if created else 'updated'} hospital {code} (AE titles: {titles})")

    _require_schema(settings)
    _run(run())


@hospitals_app.command("list")
def hospitals_list() -> None:
    from radrelay.hospitals.service import hospitals

    settings = _settings()
    _require_schema(settings)

    async def run() -> None:
        async with _db(settings).unit_of_work() as session:
            for h in await hospitals.all(session):
                titles = ", ".join(sorted(a.ae_title for a in h.ae_titles))
                typer.echo(f"{h.code}\t{h.name}\t{titles}")

    _run(run())


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help="tech, radiologist, coordinator or admin.")],
    hospital: Annotated[str | None, typer.Option(help="Hospital code (technicians).")] = None,
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
) -> None:
    """Create a user or update it (idempotent on the username)."""
    from radrelay.auth.schemas import UserCreate
    from radrelay.auth.service import auth_service

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = _settings()
    data = _validated(
        UserCreate,
        username=username,
        role=role,
        hospital_code=hospital,
        display_name=display_name,
        password=password,
    )

    async def run() -> None:
        async with _db(settings).unit_of_work() as session:
            user, created = await auth_service.create_user(session, data)
        typer.echo(f"{'created' if created else 'updated'} user {user.username} ({user.role})")

    _require_schema(settings)
    _run(run())


@users_app.command("list")
def users_list() -> None:
    from radrelay.auth.repository import users

    settings = _settings()
    _require_schema(settings)

    async def run() -> None:
        async with _db(settings).unit_of_work() as session:
            for u in await users.all(session):
                typer.echo(f"{u.username}\t{u.role}\t{u.hospital_id or ''}\t{u.display_name}")

    _run(run())


@app.command()
def demo(
    studies: Annotated[int, typer.Option(help="Synthetic studies to add per hospital.")] = 2,
) -> None:
    """Seed demo hospitals, users (logins printed) and a few studies. Idempotent."""
    from radrelay.demo import seed

    settings = _settings()
    _require_schema(settings)
    for line in _run(seed(settings, studies_per_hospital=studies)):
        typer.echo(line)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the DICOM files into.")],
    modality: Annotated[str, typer.Option(help="CT, MR or CR.")] = "CT",
    studies: Annotated[int, typer.Option(help="How many studies.")] = 1,
    slices: Annotated[int, typer.Option(help="Slices per CT/MR series.")] = 200,
    size: Annotated[int, typer.Option(help="Rows and columns of each image.")] = 512,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same UIDs).")] = 1,
    charset: Annotated[
        str, typer.Option(help="GB18030, GBK, ISO_IR 192 or ISO 2022 IR 58.")
    ] = "GB18030",
    hospital: Annotated[str, typer.Option(help="Prefix of patient IDs and UID seeds.")] = "DEMO",
) -> None:
    """Write realistic synthetic studies (phantom CT, MR, CR chest) for demos, tests, benchmarks."""
    from radrelay.synth import write_studies

    paths = write_studies(
        out,
        modality=modality,
        studies=studies,
        slices=slices,
        size=size,
        seed=seed,
        charset=charset,
        hospital=hospital,
    )
    typer.echo(f"wrote {len(paths)} files under {out}")


@reports_app.command("verify")
def reports_verify(
    file: Annotated[Path, typer.Argument(help="The signed report PDF.", exists=True)],
    ca: Annotated[
        Path | None,
        typer.Option(help="Trusted CA certificate (PEM); default: the platform CA's ca.crt."),
    ] = None,
) -> None:
    """Check a report's signatures: intact, valid, signer and time (exit 0 valid, 1 not)."""
    from zoneinfo import ZoneInfo

    from cryptography import x509

    from radrelay.reporting.pki import CA_CERT
    from radrelay.reporting.signing import verify

    settings = _settings()
    # pyHanko logs a traceback for every untrusted chain; the summary below says it in a line.
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    roots: list[x509.Certificate] = []
    ca_file = ca or settings.ca_dir / CA_CERT
    if ca_file.exists():
        roots = list(x509.load_pem_x509_certificates(ca_file.read_bytes()))
    else:
        typer.echo(f"warning: no CA certificate at {ca_file}: nothing can be trusted", err=True)
    result = verify(file.read_bytes(), roots)
    zone = ZoneInfo(settings.timezone)

    def yes(value: bool) -> str:
        return "yes" if value else "NO"

    typer.echo(f"file: {file}")
    typer.echo(f"sha256: {result.sha256}")
    typer.echo(f"intact: {yes(result.intact)}")
    typer.echo(f"valid: {yes(result.valid)}")
    typer.echo(f"signer: {result.signer or '-'}")
    last = result.signed_at.astimezone(zone).isoformat() if result.signed_at else "-"
    typer.echo(f"time: {last}")
    for n, sig in enumerate(result.signatures, 1):
        when = sig.signed_at.astimezone(zone).isoformat() if sig.signed_at else "-"
        typer.echo(
            f"signature {n}: {sig.field}: signer {sig.signer or '-'}, time {when}"
            f" ({'timestamp authority' if sig.timestamped else 'signer clock'}), {sig.level}, "
            f"intact {yes(sig.intact)}, trusted {yes(sig.trusted)}, valid {yes(sig.valid)}"
        )
    for problem in result.problems:
        typer.echo(f"problem: {problem}")
    raise typer.Exit(0 if result.valid else 1)


def _validated(model: type, **values: object):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as exc:
        for e in exc.errors():
            typer.echo(f"error: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}", err=True)
        raise typer.Exit(2) from exc


def _db(settings: Settings):  # type: ignore[no-untyped-def]
    from radrelay.kit.db import Database

    return Database(settings.resolved_database_url)


def _run(coro):  # type: ignore[no-untyped-def]
    from radrelay.errors import AppError

    try:
        return asyncio.run(coro)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc


if __name__ == "__main__":
    app()
