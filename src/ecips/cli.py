"""The ``ecips`` command: run the system, issue tokens, migrate."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TextIO

from ecips_common.auth import SCOPES

DEFAULT_DATA_DIR = Path(".ecips")


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("ECIPS_DATA_DIR", DEFAULT_DATA_DIR)),
        help="where the embedded runtime keeps its data and keys (default: ./.ecips)",
    )


def build_parser() -> argparse.ArgumentParser:
    from ecips.stack import DEFAULT_KAFKA_PORT, DEFAULT_PORTS, DEFAULT_POSTGRES_PORT

    parser = argparse.ArgumentParser(
        prog="ecips", description="Enterprise credit information publicity system"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole system on its embedded default")
    _add_data_dir(up)
    for name, port in DEFAULT_PORTS.items():
        up.add_argument(f"--{name}-port", type=int, default=port, help=f"default {port}")
    up.add_argument("--postgres-port", type=int, default=DEFAULT_POSTGRES_PORT)
    up.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT)
    up.add_argument("--log-level", default="INFO")

    token = commands.add_parser("token", help="bearer tokens for department systems")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    issue = token_commands.add_parser("issue", help="print a signed bearer token")
    _add_data_dir(issue)
    issue.add_argument("--department", required=True, help="department code, e.g. CQ-SAMR")
    issue.add_argument("--scopes", required=True, help=f"comma-separated: {', '.join(SCOPES)}")
    issue.add_argument("--ttl-days", type=float, default=30.0)
    issue.add_argument(
        "--subject", default=None, help="who the token is for (default: the department)"
    )

    demo = commands.add_parser("demo", help="realistic demo data")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True)
    generate = demo_commands.add_parser(
        "generate", help="write demo records, one NDJSON per department"
    )
    generate.add_argument("--enterprises", type=int, default=1000)
    generate.add_argument("--records", type=int, default=None, help="stop after this many records")
    generate.add_argument("--seed", type=int, default=2016)
    generate.add_argument("--out", type=Path, default=Path(".ecips/demo"))
    load = demo_commands.add_parser(
        "load", help="submit generated demo records to a running system"
    )
    _add_data_dir(load)
    load.add_argument("--dir", type=Path, default=Path(".ecips/demo"))
    load.add_argument("--ingest-url", default="http://127.0.0.1:8001")
    load.add_argument("--concurrency", type=int, default=16)

    migrate = commands.add_parser("migrate", help="apply database migrations (DATABASE_URL)")
    migrate.add_argument("services", nargs="*", help="services to migrate (default: all)")
    return parser


def cmd_up(args: argparse.Namespace) -> int:
    from ecips.stack import SERVICES, Stack, StackConfig

    config = StackConfig(
        data_dir=args.data_dir,
        ports={name: getattr(args, f"{name}_port") for name in SERVICES},
        postgres_port=args.postgres_port,
        kafka_port=args.kafka_port,
        database_url=os.environ.get("DATABASE_URL"),
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        log_level=args.log_level,
    )
    stack = Stack(config)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stack.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
        _tell(f"ecips: all services ready; logs in {stack.data_dir / 'logs'}; press Ctrl-C to stop")
        stack.supervise()
        _tell("ecips: stopping")
    except Exception as exc:
        _tell(f"ecips: {exc}", sys.stderr)
        return 1
    finally:
        # Whatever happened above (even a closed stdout), the children go down with us.
        stack.stop()
    _tell("ecips: stopped")
    return 0


def _tell(message: str, stream: TextIO | None = None) -> None:
    """Print, unless whoever reads our output has gone (a closed pipe must not
    keep the supervisor from stopping what it started)."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=stream or sys.stdout, flush=True)


def cmd_token_issue(args: argparse.Namespace) -> int:
    from ecips.stack import issue_data_dir_token

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        print(f"ecips: unknown scopes {unknown}; known: {', '.join(SCOPES)}", file=sys.stderr)
        return 2
    token = issue_data_dir_token(
        args.data_dir,
        department=args.department,
        scopes=scopes,
        ttl_seconds=int(args.ttl_days * 86400),
        subject=args.subject,
    )
    print(token)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio
    import time

    from ecips import demo

    if args.demo_command == "generate":
        started = time.monotonic()
        counts = demo.generate(
            args.out,
            enterprises=args.enterprises,
            max_records=args.records,
            seed=args.seed,
            progress=demo.print_progress(args.enterprises),
        )
        print(
            f"\necips: {sum(counts.values()):,} records for {args.enterprises:,} enterprises "
            f"in {time.monotonic() - started:.1f} s, in {args.out}/",
            flush=True,
        )
        for department, count in sorted(counts.items()):
            print(f"  {department:<14} {count:>10,}")
        return 0
    from ecips.stack import issue_data_dir_token

    def token_for(department: str) -> str:
        return issue_data_dir_token(
            args.data_dir, department=department, scopes=["records:write"], ttl_seconds=86400
        )

    def progress(done: int, total: int) -> None:
        print(f"\r  {done:,}/{total:,} records submitted", end="", file=sys.stderr, flush=True)

    statuses = asyncio.run(
        demo.load(
            args.dir,
            ingest_url=args.ingest_url,
            token_for=token_for,
            concurrency=args.concurrency,
            progress=progress,
        )
    )
    print(f"\necips: answers by status: {statuses}", flush=True)
    return 0 if set(statuses) <= {"200", "202"} else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    from ecips.stack import SERVICES
    from ecips_common.migrations import upgrade_to_head

    url = os.environ.get("DATABASE_URL")
    if not url:
        print("ecips: set DATABASE_URL (postgresql+asyncpg://...)", file=sys.stderr)
        return 2
    chosen = args.services or list(SERVICES)
    for name in chosen:
        if name not in SERVICES:
            print(f"ecips: unknown service {name!r}", file=sys.stderr)
            return 2
        print(f"ecips: migrating {name}", flush=True)
        upgrade_to_head(f"ecips_{name}", url, name)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        return cmd_up(args)
    if args.command == "token":
        return cmd_token_issue(args)
    if args.command == "demo":
        return cmd_demo(args)
    if args.command == "migrate":
        return cmd_migrate(args)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
