"""``ordo``: the command-line client for an ordo API.

argparse and httpx, not typer and rich: the client starts in about a third of the time
(argparse is in the standard library, and rich alone imports for longer than a poll lasts), and
one live status line needs nothing more than a carriage return.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from ordo_cli import credentials
from ordo_cli.api import Api, CliError, check_url

DEFAULT_URL = "http://127.0.0.1:3000"
TASK_TYPES = {"1": "reverse", "2": "swap_pairs", "3": "repeat_by_position"}
FIRST_POLL, MAX_POLL = 0.2, 2.0
EXIT_TIMEOUT, EXIT_INTERRUPTED = 124, 130


class Output:
    """Plain lines when piped; one JSON document with ``--json``; a live line on a terminal."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.live = sys.stdout.isatty() and not as_json
        self._line = ""

    def show(self, text: str, document: Any = None) -> None:
        """The command's answer: ``text`` for people, ``document`` for ``--json``."""
        self.clear()
        if self.as_json:
            print(json.dumps(document if document is not None else {"message": text}))
        else:
            print(text)

    def note(self, text: str) -> None:
        """Progress for people; nothing in ``--json`` mode, so stdout stays one document."""
        if not self.as_json:
            self.clear()
            print(text, flush=True)

    def status(self, text: str) -> None:
        if self.as_json or text == self._line:
            return
        if self.live:
            sys.stdout.write(f"\r\033[2K{text}")
            sys.stdout.flush()
        else:
            print(text, flush=True)
        self._line = text

    def clear(self) -> None:
        if self.live and self._line:
            sys.stdout.write("\r\033[2K")
            sys.stdout.flush()
        self._line = ""


# --- commands -------------------------------------------------------------------------------


def task_type(value: str) -> str:
    chosen = TASK_TYPES.get(value, value)
    if chosen not in TASK_TYPES.values():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a task type: "
            "use reverse (1), swap_pairs (2) or repeat_by_position (3)"
        )
    return chosen


def submit(api: Api, out: Output, args: argparse.Namespace) -> int:
    accepted = api.call("POST", "/tasks", json={"type": args.type, "data": args.data})
    out.show(accepted["task_id"], accepted)
    return 0


def status(api: Api, out: Output, args: argparse.Namespace) -> int:
    view = api.call("GET", f"/tasks/{args.id}")
    out.show(_describe(view), view)
    return 0


def result(api: Api, out: Output, args: argparse.Namespace) -> int:
    answer = api.call("GET", f"/tasks/{args.id}/result")
    out.show(answer["result"], answer)
    return 0


def _describe(view: dict[str, Any]) -> str:
    text = str(view["status"])
    if view.get("queue_position") is not None:
        text += f", {view['queue_position']} ahead"
    if view.get("error"):
        text += f": {view['error']}"
    return text


def run(api: Api, out: Output, args: argparse.Namespace) -> int:
    accepted = api.call("POST", "/tasks", json={"type": args.type, "data": args.data})
    task_id = accepted["task_id"]
    out.note(f"task {task_id}")
    started, delay = time.monotonic(), FIRST_POLL
    try:
        while True:
            view = api.call("GET", f"/tasks/{task_id}")
            elapsed = time.monotonic() - started
            if view["status"] == "completed":
                answer = api.call("GET", f"/tasks/{task_id}/result")
                out.show(answer["result"], answer)
                return 0
            if view["status"] == "failed":
                out.clear()
                if out.as_json:
                    out.show("", view)
                print(f"task {task_id} failed: {view.get('error')}", file=sys.stderr)
                return 1
            out.status(f"{_describe(view)} · {elapsed:.1f}s")
            if args.timeout is not None and elapsed + delay > args.timeout:
                out.clear()
                if out.as_json:
                    out.show("", {"task_id": task_id, "status": view["status"], "timed_out": True})
                print(
                    f"gave up waiting after {args.timeout:g}s; task {task_id} carries on "
                    f"(check it with: ordo status {task_id})",
                    file=sys.stderr,
                )
                return EXIT_TIMEOUT
            time.sleep(delay)
            delay = min(delay * 1.5, MAX_POLL)
    except KeyboardInterrupt:
        out.clear()
        if out.as_json:
            out.show("", {"task_id": task_id, "interrupted": True})
        print(
            f"stopped waiting; task {task_id} carries on on the server. "
            f"Check it with: ordo status {task_id}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def job(api: Api, out: Output, args: argparse.Namespace) -> int:
    view = api.call("GET", f"/status/{args.id}")
    text = f"{view['status']} ({view['progress']}%)"
    if view.get("result") is not None:
        text += f"\n{json.dumps(view['result'])}"
    if view.get("error"):
        text += f": {view['error']}"
    out.show(text, view)
    return 0


def upload(api: Api, out: Output, args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        document = json.loads(text)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CliError(f"{args.file} is not valid JSON: {exc}") from exc
    body: dict[str, Any] = {"type": args.type}
    if isinstance(document, dict) and "content" in document:
        body |= {key: document[key] for key in ("content", "metaData") if key in document}
    else:
        body["content"] = document
    accepted = api.call("POST", "/upload", json=body)
    out.show(accepted["job_id"], accepted)
    return 0


def cases(api: Api, out: Output, args: argparse.Namespace) -> int:
    if args.action == "create":
        body: dict[str, Any] = {}
        if args.procedure:
            body["procedure_name"] = args.procedure
        if args.cpt:
            body["cpt_codes"] = args.cpt
        if args.notes:
            body["notes"] = args.notes
        created = api.call("POST", "/cases", json=body or None)
        out.show(created["case_id"], created)
        return 0
    if args.action == "list":
        params = {"limit": args.limit} | ({"status": args.status} if args.status else {})
        page = api.call("GET", "/cases", params=params)
        lines = [f"{c['case_id']}  {c['status']:<10}  {c['procedure_name']}" for c in page["items"]]
        out.show("\n".join(lines) or "no cases", page)
        return 0
    if not args.id:
        raise CliError(f"ordo cases {args.action} needs a case id")
    case = api.call("GET", f"/cases/{args.id}")
    if args.action == "watch":
        delay = FIRST_POLL
        try:
            while case["status"] != "complete":
                out.status(f"{case['status']}")
                time.sleep(delay)
                delay = min(delay * 1.5, MAX_POLL)
                case = api.call("GET", f"/cases/{args.id}")
        except KeyboardInterrupt:
            out.clear()
            print(f"stopped watching case {args.id}", file=sys.stderr)
            return EXIT_INTERRUPTED
    summary = f"{case['status']}" + (f"\n{case['summary']}" if case.get("summary") else "")
    out.show(summary, case)
    return 0


def fetch(api: Api, out: Output, args: argparse.Namespace) -> int:
    answer = api.call("POST", "/fetch", params={"mode": "sync" if args.sync else "task"})
    text = (
        f"{answer['status']}: fetched {answer['fetched']}, created {answer['created']}, "
        f"updated {answer['updated']}, skipped {answer['skipped']}"
        if args.sync
        else f"fetch job {answer['job_id']} {answer.get('status', 'pending')}: {answer['message']}"
    )
    out.show(text, answer)
    return 0


def data(api: Api, out: Output, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.user_id is not None:
        params["user_id"] = args.user_id
    if args.cursor:
        params["cursor"] = args.cursor
    page = api.call("GET", "/data", auth=False, params=params)
    lines = [f"{p['id']:>6}  user {p['user_id']:<4} {p['title']}" for p in page["items"]]
    out.show("\n".join(lines) or "no data", page)
    return 0


def products(api: Api, out: Output, args: argparse.Namespace) -> int:
    if args.action == "get":
        if not args.query:
            raise CliError("ordo products get needs a product id")
        product = api.call("GET", f"/products/{args.query}", auth=False)
        out.show(f"{product['name']}  {product['price']}  stock {product['stock']}", product)
        return 0
    params: dict[str, Any] = {"page": args.page, "page_size": args.page_size}
    for name in ("category", "sort_by", "sort_order", "min_price", "max_price"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    if args.action == "search":
        if not args.query:
            raise CliError("ordo products search needs a query")
        params["q"] = args.query
        page = api.call("GET", "/products/search", auth=False, params=params)
    else:
        if args.query:
            params["name"] = args.query
        page = api.call("GET", "/products", auth=False, params=params)
    lines = [f"{p['id']}  {p['price']:>10}  {p['stock']:>5}  {p['name']}" for p in page["items"]]
    footer = f"page {page['page']} of {page['total_pages']} ({page['total']} products)"
    out.show("\n".join([*lines, footer]), page)
    return 0


def admin_lane(api: Api, out: Output, _: argparse.Namespace) -> int:
    lane = api.call("GET", "/admin/lane")
    age = lane["oldest_pending_age_seconds"]
    running = lane["running"]
    lines = [
        f"pending {lane['pending']}"
        + (f" (oldest waiting {age:.1f}s)" if age is not None else "")
        + f", processing {lane['processing']}",
        f"running {running['job_id']} ({running['kind']}) since {running['started_at']}"
        if running
        else "running nothing",
        f"dead letters {lane['dead_letters']}, failed in the last hour {lane['failed_last_hour']}",
    ]
    out.show("\n".join(lines), lane)
    return 0


def admin_jobs(api: Api, out: Output, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"status": args.status, "limit": args.limit}
    if args.cursor:
        params["cursor"] = args.cursor
    page = api.call("GET", "/admin/jobs", params=params)
    lines = [
        f"{j['job_id']}  {j['status']:<10}  {j['kind']:<18}  {j['owner']}"
        + (f"  {j['error']}" if j.get("error") else "")
        + (f"  (retried as {j['retried_as']})" if j.get("retried_as") else "")
        for j in page["items"]
    ]
    if page["next_cursor"]:
        lines.append(f"more: ordo admin jobs --status {args.status} --cursor {page['next_cursor']}")
    out.show("\n".join(lines) or f"no {args.status} jobs", page)
    return 0


def admin_retry(api: Api, out: Output, args: argparse.Namespace) -> int:
    accepted = api.call("POST", f"/admin/jobs/{args.id}/retry")
    out.show(accepted["job_id"], accepted)
    return 0


def login(api: Api, out: Output, args: argparse.Namespace) -> int:
    username = args.username or input("username: ")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
    api.login(username, password)
    me = api.call("GET", "/auth/me")
    out.show(f"signed in as {me['username']} ({me['role']})", me)
    return 0


def logout(api: Api, out: Output, _: argparse.Namespace) -> int:
    done = api.logout()
    if done.problem:
        print(
            f"ordo: the server could not be told ({done.problem}); the session stays valid "
            "there until its refresh token expires",
            file=sys.stderr,
        )
    out.show(
        "signed out" if done.signed_in else "not signed in",
        {"signed_out": done.signed_in, "server_told": done.signed_in and not done.problem},
    )
    return 0


def whoami(api: Api, out: Output, _: argparse.Namespace) -> int:
    if credentials.load(api.url) is None:
        raise CliError(f"not signed in to {api.url}; run `ordo login`")
    me = api.call("GET", "/auth/me")
    out.show(f"{me['username']} ({me['role']}) at {api.url}", me)
    return 0


def _checkout() -> Path:
    """The ordo checkout this client lives in: `ordo local` needs its infra/local."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "infra" / "local" / "__main__.py").exists():
        raise CliError(
            "`ordo local` runs from an ordo checkout (pip install -e .); "
            f"infra/local was not found in {root}",
            code=2,
        )
    return root


def local(_: Api, __: Output, args: argparse.Namespace) -> int:
    """The local cloud, as `make dev` runs it: this client must live in an ordo checkout."""
    root = _checkout()
    env = os.environ | {"PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "infra.local", *args.local_args]
    try:
        return subprocess.call(command, cwd=root, env=env)
    except KeyboardInterrupt:  # the local cloud got the same ctrl+c and stops by itself
        return EXIT_INTERRUPTED


def local_invoke(argv: list[str]) -> int:
    """`ordo local invoke FUNCTION`: in this process, with the checkout's infra.local."""
    root = str(_checkout())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        invoke_cli = importlib.import_module("infra.local.invoke_cli")
    except ImportError as exc:  # a checkout without the dev tools (moto, the SAM translator)
        raise CliError(
            f"`ordo local invoke` needs the local cloud's packages ({exc}): "
            "pip install -e '.[dev]', or run `make venv`",
            code=2,
        ) from exc
    return int(invoke_cli.main(argv, prog="ordo local invoke"))


# --- the parser -----------------------------------------------------------------------------

Command = Callable[[Api, Output, argparse.Namespace], int]


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api-url",
        default=argparse.SUPPRESS,
        help=f"the API (default: $ORDO_API_URL, or {DEFAULT_URL})",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
    )
    common.add_argument(
        "--insecure",
        action="store_true",
        default=argparse.SUPPRESS,
        help="allow a plain http:// API URL that is not loopback (sends the password and "
        "tokens in clear text)",
    )
    main = argparse.ArgumentParser(
        prog="ordo",
        parents=[common],
        description="The ordo client: text tasks, documents, cases and the aggregator.\n\n"
        "It talks https, or plain http only to this machine (127.0.0.0/8, ::1, localhost),\n"
        "unless --insecure is given. `ordo logout` revokes the session on the server too.",
        epilog="example: ordo login && ordo run reverse 'hello world'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, help_text: str, example: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=f"example: {example}",
        )
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, help_text in (
        ("submit", submit, "submit a text task; prints its id"),
        ("run", run, "submit a task, wait showing its status, print the result"),
    ):
        sub = add(name, handler, help_text, f"ordo {name} swap_pairs abcdef")
        sub.add_argument(
            "type", type=task_type, help="reverse|swap_pairs|repeat_by_position, or 1|2|3"
        )
        sub.add_argument("data", help="the text")
        if name == "run":
            sub.add_argument(
                "--timeout", type=float, help="give up waiting after SECONDS (exit 124)"
            )
    for name, handler, help_text in (
        ("status", status, "a task's status and queue position"),
        ("result", result, "a completed task's result"),
        ("job", job, "any job's status, progress and result (/status)"),
    ):
        add(name, handler, help_text, f"ordo {name} 4f1c2a7be0d94c6f8a2b3c4d5e6f7a8b").add_argument(
            "id"
        )
    sub = add(
        "upload",
        upload,
        "upload an invoice or a contract (JSON)",
        "ordo upload invoice.json --type invoice",
    )
    sub.add_argument("file", help="a JSON file, or - for stdin")
    sub.add_argument("--type", required=True, choices=["invoice", "contract"])
    sub = add("cases", cases, "create, read, list or watch cases", "ordo cases watch case_4f1c...")
    sub.add_argument("action", choices=["create", "get", "list", "watch"])
    sub.add_argument("id", nargs="?", help="the case id (get, watch)")
    sub.add_argument("--procedure", help="create: the procedure name")
    sub.add_argument("--cpt", action="append", help="create: a CPT code (repeat for more)")
    sub.add_argument("--notes", help="create: free-form notes")
    sub.add_argument(
        "--status", choices=["submitted", "processing", "complete"], help="list: filter"
    )
    sub.add_argument("--limit", type=int, default=20, help="list: how many (1-100)")
    sub = add(
        "fetch", fetch, "fetch the aggregator's source (a job, or --sync now)", "ordo fetch --sync"
    )
    sub.add_argument("--sync", action="store_true", help="fetch now (admins)")
    sub = add("data", data, "the aggregated posts, by id", "ordo data --user-id 2")
    sub.add_argument("--user-id", type=int)
    sub.add_argument("--limit", type=int, default=20)
    sub.add_argument("--cursor")
    sub = add("products", products, "list, search or read the catalog", "ordo products search blue")
    sub.add_argument("action", choices=["list", "search", "get"])
    sub.add_argument("query", nargs="?", help="list: a name filter; search: the text; get: the id")
    sub.add_argument("--category")
    sub.add_argument("--min-price", dest="min_price")
    sub.add_argument("--max-price", dest="max_price")
    sub.add_argument("--sort-by", dest="sort_by", choices=["name", "price", "created_at", "stock"])
    sub.add_argument("--sort-order", dest="sort_order", choices=["asc", "desc"])
    sub.add_argument("--page", type=int, default=1)
    sub.add_argument("--page-size", dest="page_size", type=int, default=10)
    _add_admin(commands, common)
    sub = add(
        "login",
        login,
        "sign in; the password is asked for, never echoed",
        "ordo login --username ann",
    )
    sub.add_argument("--username")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add(
        "logout",
        logout,
        "sign out: revoke the session on the server, then forget the stored tokens",
        "ordo logout",
    )
    add("whoami", whoami, "the signed-in user", "ordo whoami")
    add(
        "local",
        local,
        "start the local cloud (as `make dev`); options go to it. "
        "`ordo local invoke FUNCTION` runs one function once, as `sam local invoke`",
        "ordo local --port 8080; ordo local invoke WorkerFunction -e infra/events/worker.json",
    )
    return main


def _add_admin(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """``ordo admin ACTION``: one parser per action, each with its own help and example."""
    admin = commands.add_parser(
        "admin",
        parents=[common],
        help="lane operations (admins): the lane, every user's jobs, retry a failed job",
        description="Lane operations for admins.",
        epilog="example: ordo admin jobs --status failed",
    )
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, help_text, example in (
        ("lane", admin_lane, "the lane now: counts, oldest wait, running job", "ordo admin lane"),
        (
            "jobs",
            admin_jobs,
            "every user's jobs in one status, newest first",
            "ordo admin jobs --status failed --limit 50",
        ),
        (
            "retry",
            admin_retry,
            "queue a failed job again at the end of the lane; prints the new job's id",
            "ordo admin retry 4f1c2a7be0d94c6f8a2b3c4d5e6f7a8b",
        ),
    ):
        action = actions.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=f"example: {example}",
        )
        action.set_defaults(handler=handler)
        if name == "jobs":
            action.add_argument(
                "--status", required=True, choices=["pending", "processing", "completed", "failed"]
            )
            action.add_argument("--limit", type=int, default=20, help="how many (1-100)")
            action.add_argument("--cursor", help="the next page, as the last page printed it")
        if name == "retry":
            action.add_argument("id", help="the failed job's id")


def fail(message: str, code: int) -> NoReturn:
    print(f"ordo: {message}", file=sys.stderr)
    raise SystemExit(code)


# The global options (see parser()), as they may come before the command.
GLOBAL_FLAGS = ("--json", "--insecure")
GLOBAL_VALUED = ("--api-url",)


def local_invoke_arguments(argv: list[str]) -> list[str] | None:
    """The arguments after ``ordo [global options] local invoke``, or None for any other
    command. The global options do not apply to it: they are skipped."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in GLOBAL_FLAGS or word.startswith(tuple(f"{o}=" for o in GLOBAL_VALUED)):
            index += 1
        elif word in GLOBAL_VALUED:
            index += 2
        else:
            break
    return argv[index + 2 :] if argv[index : index + 2] == ["local", "invoke"] else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    invoke_arguments = local_invoke_arguments(argv)
    if invoke_arguments is not None:  # its own options, parsed by infra.local.invoke_cli
        try:
            return local_invoke(invoke_arguments)
        except CliError as error:
            fail(error.message, error.code)
    cli = parser()
    args, extra = cli.parse_known_args(argv)
    if args.command == "local":
        args.local_args = extra  # --port, --no-watch...: python -m infra.local's own options
    elif extra:
        cli.error(f"unrecognized arguments: {' '.join(extra)}")
    url = getattr(args, "api_url", None) or os.environ.get("ORDO_API_URL") or DEFAULT_URL
    out = Output(as_json=getattr(args, "json", False))
    if args.command != "local":  # before any request: no password or token goes out in clear
        try:
            check_url(url, insecure=getattr(args, "insecure", False))
        except CliError as error:
            fail(error.message, error.code)
    api = Api(url)
    try:
        handler: Command = args.handler
        return handler(api, out, args)
    except CliError as error:
        out.clear()
        fail(error.message, error.code)
    except KeyboardInterrupt:
        out.clear()
        fail("interrupted", EXIT_INTERRUPTED)
    finally:
        api.close()


def entry() -> None:
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # ctrl+c before a command could handle it
        sys.exit(EXIT_INTERRUPTED)
