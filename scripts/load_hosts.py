"""Two hosts on one PostgreSQL beside one host on SQLite, under the same load (scripts/load.py's
signed WeChat pushes, recurring questions): the SQLite default as one ``policybot serve`` with
``--workers 2``, then two ``policybot serve --workers 1`` ("hosts", separate data folders, the same
index) on ``--database-url``, the clients split between them. Loaded in turns (``--rounds``) so a
busy machine slows both alike; the server CPU per message counts the PostgreSQL server's processes
too when it runs on this machine.

    .venv/bin/python scripts/load_hosts.py --database-url postgresql://policybot@/policybot?host=/run/postgresql

The database must be empty or upgraded (the script runs ``policybot db upgrade``); its question
log and dedupe tables grow by the messages sent.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402  (scripts/load.py: the load client)
import load_servers  # noqa: E402  (scripts/load_servers.py: the servers and their CPU time)


def _database_cpu(url: str):
    """A function giving the CPU seconds of the PostgreSQL server's processes, if it runs here (else 0)."""
    from bot.storage.pg import connect

    with connect(url) as conn:  # its parent looked up while it lives: a closed backend is gone from /proc
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        parents = {pid: ppid for pid, ppid, _, _ in load_servers._stats()}
    postmaster = parents.get(backend)
    if postmaster is None:
        print("the database server runs elsewhere: its CPU is not counted", file=sys.stderr)
        return lambda: 0.0
    return load_servers.Server("", SimpleNamespace(pid=postmaster)).cpu_s  # the postmaster and its children


def _hosts_env(url: str):
    plain = load_servers.server_env

    def env(data: Path, *, aes: bool) -> dict[str, str]:
        return {**plain(data, aes=aes), "POLICYBOT_DATABASE_URL": url} if "host-" in data.name else plain(data, aes=aes)

    return env


def _split_load(urls: list[str], signer, texts, *, clients: int, requests: int, users: int, offset: int):
    """The clients and requests shared between ``urls``, all at once; the tallies pooled."""
    tallies: list = [None] * len(urls)

    def run(i: int) -> None:
        tallies[i] = load.run_load(urls[i], signer, texts, clients=clients // len(urls),
                                   requests=requests // len(urls), users=users, offset=offset + i * 7)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pooled = load._pool(tallies)
    pooled.elapsed = max(t.elapsed for t in tallies)  # concurrent, not one after the other
    return pooled


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--port", type=int, default=18800)
    ap.add_argument("--corpus", default=str(load.FIXTURES / "corpus"))
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "policybot-load"))
    args = ap.parse_args(argv)
    from bot.storage.pg import upgrade

    upgrade(args.database_url)
    data, signer = load_servers.prepare_data(args), load.Signer(load.TOKEN, aes=False)
    texts = load.load_questions(args.questions)
    hosts = []
    for name in ("host-a", "host-b"):
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        host = folder / name
        host.mkdir()
        # A copy, not a link: each host's sync thread (bot/replica.py) may install versions into its own.
        shutil.copytree(data / "index", host / "index", symlinks=True)
        hosts.append(host)
    load_servers.server_env = _hosts_env(args.database_url)
    database_cpu = _database_cpu(args.database_url)
    per_round = args.requests // args.rounds
    runs: dict[str, list] = {"sqlite": [], "postgresql": []}
    cpu = {"sqlite": 0.0, "postgresql": 0.0, "database": 0.0}
    with ExitStack() as stack:
        single = stack.enter_context(load_servers.serving("policybot", data, args.port, 2, aes=False))
        pair = [stack.enter_context(load_servers.serving("policybot", host, args.port + 1 + i, 1, aes=False))
                for i, host in enumerate(hosts)]
        offset = len(texts) * 4  # warm: every question asked once on every server
        load.run_load(single.url, signer, texts, clients=args.clients, requests=offset, users=args.users)
        _split_load([s.url for s in pair], signer, texts, clients=args.clients, requests=offset * 2,
                    users=args.users, offset=0)
        for _ in range(args.rounds):
            before = single.cpu_s()
            runs["sqlite"].append(load.run_load(single.url, signer, texts, clients=args.clients,
                                                requests=per_round, users=args.users, offset=offset))
            cpu["sqlite"] += single.cpu_s() - before
            before, database_before = sum(s.cpu_s() for s in pair), database_cpu()
            runs["postgresql"].append(_split_load([s.url for s in pair], signer, texts, clients=args.clients,
                                                  requests=per_round, users=args.users, offset=offset))
            cpu["database"] += database_cpu() - database_before
            cpu["postgresql"] += sum(s.cpu_s() for s in pair) - before + database_cpu() - database_before
            offset += per_round
    per_message = {}
    for name, label in (("sqlite", "sqlite 1x2"), ("postgresql", "pg 2x1")):
        tally = load._pool(runs[name])
        per_message[name] = cpu[name] / len(tally.latencies) * 1000
        print(tally.line(label) + f"   server CPU {per_message[name]:.2f} ms/message")
    database = cpu["database"] / len(load._pool(runs["postgresql"]).latencies) * 1000
    print(f"cost per message on PostgreSQL: {per_message['postgresql'] / per_message['sqlite']:.2f}x SQLite's "
          f"(of its {per_message['postgresql']:.2f} ms, the database server's processes {database:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
