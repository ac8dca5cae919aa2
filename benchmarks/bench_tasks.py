"""Task pool benchmarks on SQLite and PostgreSQL.

Prints, for each backend:
1. throughput: claims+commits per second of trivial tasks with 4 worker processes (every task
   must end done after exactly one claim: a task claimed twice would show 2 attempts);
2. scaling: wall time of a pool of CPU-bound tasks with 1 and with 2 worker processes, and
   the ratio (2 cores give at most 2x).

Worker processes are started and connected before the clock starts.

Usage: python benchmarks/bench_tasks.py [--tasks 2000] [--workers 4] [--cpu-tasks 16]
       [--cpu-seconds 0.25] [--pg-url URL] [--no-postgres]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _worker(uri: str, pool: str, func: str, ready: mp.Queue, start: mp.Event) -> None:  # type: ignore[type-arg]
    from alphalab.tasks import TaskManager, resolve_task_func, run_task

    task_func = resolve_task_func(func)
    tm = TaskManager(pool, uri, lease_seconds=30)
    tm.task_stat()  # connect before the clock starts
    ready.put(os.getpid())
    start.wait()
    run_task(task_func, pool, manager=tm, poll_interval=0.01)


def _run_pool(uri: str, pool: str, func: str, n_workers: int) -> float:
    ctx = mp.get_context("spawn")
    ready, start = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_worker, args=(uri, pool, func, ready, start)) for _ in range(n_workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    began = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - began
    bad = [p.exitcode for p in procs if p.exitcode != 0]
    if bad:
        raise SystemExit(f"worker processes failed with exit codes {bad}")
    return elapsed


def _check_once(uri: str, pool: str, n: int) -> str:
    from alphalab.tasks import TaskManager

    tm = TaskManager(pool, uri)
    stat = tm.task_stat()
    twice = [t.id for t in tm.query() if t.attempts != 1]
    if stat != {"done": n} or twice:
        return f"PROBLEM: {stat}, tasks claimed more than once: {twice[:10]}"
    return f"all {n} tasks done, each claimed exactly once"


def bench_backend(name: str, uri: str, args: argparse.Namespace) -> None:
    from alphalab.tasks import TaskManager

    pool = f"bench-{uuid.uuid4().hex[:6]}"
    TaskManager(pool, uri).create_task([{"i": i} for i in range(args.tasks)])
    elapsed = _run_pool(uri, pool, "alphalab.testing._tasks:noop_task", args.workers)
    rate = args.tasks / elapsed
    print(
        f"[{name}] throughput: {args.tasks} trivial tasks, {args.workers} workers: "
        f"{elapsed:.2f}s = {rate:.0f} claims+commits/s ({_check_once(uri, pool, args.tasks)})"
    )
    times = {}
    for n_workers in (1, 2):
        cpu_pool = f"cpu-{n_workers}-{uuid.uuid4().hex[:6]}"
        tasks = [{"seconds": args.cpu_seconds, "i": i} for i in range(args.cpu_tasks)]
        TaskManager(cpu_pool, uri).create_task(tasks)
        times[n_workers] = _run_pool(uri, cpu_pool, "alphalab.testing._tasks:spin_task", n_workers)
    print(
        f"[{name}] scaling: {args.cpu_tasks} CPU-bound tasks of {args.cpu_seconds}s: "
        f"1 worker {times[1]:.2f}s, 2 workers {times[2]:.2f}s, "
        f"speed-up {times[1] / times[2]:.2f}x"
    )


@contextmanager
def _pg_schema(url: str) -> Iterator[str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--cpu-tasks", type=int, default=16)
    parser.add_argument("--cpu-seconds", type=float, default=0.25)
    parser.add_argument("--pg-url", default=os.environ.get("ALPHALAB_TEST_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"CPU cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as folder:
        bench_backend("sqlite", f"sqlite:///{Path(folder) / 'tasks.db'}", args)
    if not args.no_postgres:
        try:
            with _pg_schema(args.pg_url) as uri:
                bench_backend("postgresql", uri, args)
        except Exception as e:  # the server may simply not be there
            print(f"[postgresql] skipped: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
