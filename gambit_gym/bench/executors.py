"""Executors that run units, and :func:`sweep`, which runs a suite into a store.

Every executor calls :func:`gambit_gym.bench.units.execute_safely` on each unit and yields
the records (or failures) as they complete; only the sweep's own process writes to the store,
so a worker that dies loses its unit and nothing else. A unit whose agent or env raises is
reported and not stored, and the sweep goes on. Because a unit's result depends only on the
unit (its seeds are fixed by the replicate indices), the serial, process and Ray executors give
the same records for the same suite.

- ``serial``: in this process (``--workers 1``).
- ``local`` (default): a process pool over all cores (``spawn``ed workers, one BLAS/torch
  thread each so that the pool does not oversubscribe the cores). Spawned workers import the
  calling script again; a script that calls :func:`sweep` from its top level without an
  ``if __name__ == "__main__":`` guard would start the sweep again in every worker, so there the
  pool falls back to running serially, with a warning that says how to get the pool back.
  Workers end when the sweep's process dies, even by ``kill -9``, and the store refuses a write
  from a sweep that no longer owns it (:meth:`ResultStore.claim`).
- ``ray``: Ray tasks on a local instance (``ray.init()``) or an existing cluster
  (``--ray-address``); needs the ``gambit-gym[ray]`` extra.
"""

from __future__ import annotations

import ast
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from gambit_gym.agents._batched import PROPENSITY_RSE
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.suites import Suite
from gambit_gym.bench.units import (
    DEFAULT_CHUNK,
    Unit,
    UnitFailure,
    UnitRecord,
    execute_safely,
    plan,
)

EXECUTORS: tuple[str, ...] = ("local", "serial", "ray")
# one thread per worker process (a worker per core): BLAS, OpenMP and the numba kernels
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


class Executor(Protocol):
    """Runs units and yields their records as they complete (in any order)."""

    def map_units(self, units: Sequence[Unit]) -> Iterator[UnitRecord | UnitFailure]:
        """Yield one record (or failure) per unit."""


class SerialExecutor:
    """Runs units one after another in this process."""

    def map_units(self, units: Sequence[Unit]) -> Iterator[UnitRecord | UnitFailure]:
        """Yield one record per unit, in order."""
        for unit in units:
            yield execute_safely(unit)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """End this worker when the sweep's process (``parent``) dies, even by ``kill -9``.

    A pool worker blocks on its task queue, which it holds both ends of, so it would never see
    its parent go and would live on as an orphan. On Linux the kernel is asked to send SIGKILL
    when the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread checks the
    parent's pid twice a second, which also covers a parent that died before the ``prctl``.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread suffices
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(0.5)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="gambit-gym-parent-watch", daemon=True).start()


def _init_worker(parent: int | None = None) -> None:
    # Ctrl-C reaches the whole process group; the sweep's process handles it and terminates
    # the workers, so they ignore it rather than each printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        _die_with_parent(parent)
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


class LocalExecutor:
    """A pool of worker processes on this machine.

    Args:
        workers: number of processes (default: every core).
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")

    def map_units(self, units: Sequence[Unit]) -> Iterator[UnitRecord | UnitFailure]:
        """Yield records as the workers finish them; at most ``workers`` units in flight.

        Runs serially (with a warning) when called from a script's top level outside an
        ``if __name__ == "__main__":`` guard, where spawned workers would re-run the script.
        """
        import multiprocessing as mp

        script = unguarded_main_script()
        if script is not None and self.workers > 1:
            warnings.warn(
                f"{script} calls the sweep outside an 'if __name__ == \"__main__\":' block, "
                "where a process pool's workers would run the script again; running the units "
                "serially instead. Put the sweep under that guard to use every core.",
                RuntimeWarning, stacklevel=3)
            yield from SerialExecutor().map_units(units)
            return
        pending = list(units)[::-1]
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker, initargs=(os.getpid(),))
        running: set[Future[UnitRecord | UnitFailure]] = set()
        finished = False
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    running.add(pool.submit(execute_safely, pending.pop()))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
            finished = True
        finally:
            # On Ctrl-C or an error, do not wait for the units in flight: they are lost (and
            # re-run by --resume), which is the store's promise.
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=finished, cancel_futures=True)
            if not finished:
                for proc in procs:
                    if proc.is_alive():
                        proc.terminate()


def check_user_agents(suite: Suite, propensities: bool, propensity_samples: int,
                      propensity_rse: float | None = None) -> list[str]:
    """Run :func:`~gambit_gym.bench.preflight.check_agent` on each user agent of ``suite``."""
    import json

    from gambit_gym.bench.preflight import check_agent

    configs: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for s in suite.settings:
        if "user" in s.tags:
            key = (s.agent, json.dumps(s.agent_kwargs, sort_keys=True))
            configs.setdefault(key, []).append(
                (s.env_id, {"horizon": suite.horizon, **s.env_kwargs}))
    notices: list[str] = []
    for (agent, kwargs), envs in configs.items():
        notices += check_agent(agent, json.loads(kwargs), envs, propensities=propensities,
                               n_samples=propensity_samples, seed=suite.seed,
                               target_rse=propensity_rse)
    return notices


def unguarded_main_script() -> str | None:
    """The script this process runs, if it is calling us from top-level code outside a guard.

    Spawned workers import the main script again (as ``__mp_main__``); its top-level code runs
    again there, except what sits under ``if __name__ == "__main__":``. This finds the main
    module's frame on the current call stack and, from the script's source, whether the
    statement being executed is under that guard.

    Returns:
        the script's path where a process pool would re-run the call, else None (no script,
        e.g. an interactive session or a notebook; called under the guard; called from a
        function that the script's top level does not call unguarded; source unreadable).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    spec = getattr(main, "__spec__", None)
    if spec is not None and (spec.name == "__main__" or spec.name.endswith(".__main__")):
        return None  # `python -m package`: spawned workers do not run a package's __main__
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>"
                                     and frame.f_globals.get("__name__") == "__main__"):
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, ValueError):
        return None
    for stmt in tree.body:
        if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
            return None if isinstance(stmt, ast.If) and _is_main_guard(stmt.test) else str(path)
    return None


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    consts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and consts == ["__main__"]


RAY_CONNECT_TIMEOUT_S = 5.0
"""How long :func:`check_ray_address` waits for a cluster's port to answer."""


def check_ray_address(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Refuse a Ray address nothing answers at, in seconds rather than Ray's minutes.

    ``ray.init(address=...)`` retries an unreachable head for about five minutes before it
    gives up; a short TCP connect to the head's port fails at once (refused) or after
    ``timeout_s`` (nothing answering). ``"auto"`` and ``"local"`` name no host and are left
    to Ray.

    Args:
        address: ``host:port`` (the head's GCS port, 6379 by default), ``ray://host:port``
            (Ray Client, 10001 by default), or a bare ``host``.
        timeout_s: seconds to wait for the connection.

    Raises:
        ValueError: a malformed address, or nothing answering there; the message names the
            address, what went wrong and how to fix it.
    """
    if address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    hostport = address[len("ray://"):] if client else address
    host, sep, port_text = hostport.rpartition(":")
    if not sep:
        host, port_text = hostport, "10001" if client else "6379"
    host = host.strip("[]")  # an IPv6 literal, [::1]:6379
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"--ray-address {address!r} is not an address; give host:port "
                         f"(the head's GCS port, e.g. 10.0.0.5:6379) or ray://host:10001")
    port = int(port_text)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ValueError(
            f"--ray-address {address!r}: no Ray cluster answers at {host}:{port} ({why}, "
            f"{timeout_s:g} s connect). Start one there (ray start --head --port={port}), "
            f"check the address (ray status on the head prints it), or leave out "
            f"--ray-address to start a local Ray instance") from None


class RayExecutor:
    """Ray tasks, one per unit, on a local Ray instance or an existing cluster.

    Args:
        address: a cluster address (``"auto"``, ``"ray://host:10001"``) or None for a local
            instance started here.
        num_cpus: CPUs of the local instance (default: all).
        max_in_flight: tasks submitted at once (default: twice the cluster's CPUs).

    Raises:
        ValueError: ``address`` is malformed or nothing answers there
            (:func:`check_ray_address`).
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 max_in_flight: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("the ray executor needs Ray: pip install 'gambit-gym[ray]'") \
                from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            env = {"env_vars": {v: "1" for v in _THREAD_VARS}}
            kwargs: dict[str, Any] = {"runtime_env": env, "log_to_driver": False,
                                      "include_dashboard": False}
            if address is not None:
                check_ray_address(address)
                kwargs["address"] = address
            else:
                # "local" always starts a new instance: a bare ray.init() would attach to a
                # cluster already running on the machine (ray start) or named by RAY_ADDRESS,
                # whose resources and num_cpus are not ours
                kwargs["address"] = "local"
                if num_cpus is not None:
                    kwargs["num_cpus"] = num_cpus
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:  # the port answers, but Ray cannot join there
                raise ValueError(
                    f"--ray-address {address!r}: {exc} (the port answers, but Ray could not "
                    f"join). Check the address (ray status on the head prints it); a cluster "
                    f"with token authentication (the default of Ray >= 2.50) also needs "
                    f"RAY_AUTH_MODE=token here and the head's token in ~/.ray/auth_token or "
                    f"RAY_AUTH_TOKEN; or leave out --ray-address to start a local Ray "
                    f"instance") from None
            self._started = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max_in_flight or max(2 * cpus, 1)

    def map_units(self, units: Sequence[Unit]) -> Iterator[UnitRecord | UnitFailure]:
        """Yield records as the Ray tasks finish."""
        ray = self._ray
        remote = ray.remote(num_cpus=1, max_retries=2)(execute_safely)
        pending = list(units)[::-1]
        running: list[Any] = []
        try:
            while pending or running:
                while pending and len(running) < self.max_in_flight:
                    running.append(remote.remote(pending.pop()))
                done, running = ray.wait(running, num_returns=1)
                for ref in done:
                    yield ray.get(ref)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)

    def shutdown(self) -> None:
        """Stop the local Ray instance if this executor started it."""
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(name: str = "local", *, workers: int | None = None,
                  ray_address: str | None = None) -> Executor:
    """Build an executor by name (``local``, ``serial`` or ``ray``).

    Raises:
        ValueError: an unknown name.
        ImportError: ``ray`` without Ray installed.
    """
    if name == "serial" or (name == "local" and workers == 1):
        return SerialExecutor()
    if name == "local":
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(ray_address, num_cpus=workers)
    raise ValueError(f"unknown executor {name!r}; executors: {', '.join(EXECUTORS)}")


@dataclass
class SweepReport:
    """What a sweep did.

    Attributes:
        planned: units in the suite.
        skipped: units already in the store (resumed past).
        ran: units run and stored now.
        duplicates: units run now that another writer had stored first (not stored twice).
        wall_time_s: seconds the sweep took.
        failures: units whose agent or env raised (not stored; ``--resume`` retries them).
    """

    planned: int
    skipped: int
    ran: int
    duplicates: int
    wall_time_s: float
    failures: list[UnitFailure] = field(default_factory=list)


def sweep(suite: Suite, store: ResultStore, *, executor: Executor | None = None,
          resume: bool = False, chunk: int = DEFAULT_CHUNK, device: str | None = None,
          propensities: bool = True, propensity_samples: int = 1000,
          propensity_rse: float | None = PROPENSITY_RSE, progress: bool = True,
          check_agents: bool = True, shard: tuple[int, int] | None = None) -> SweepReport:
    """Run a suite's units into a store.

    Args:
        suite: the (possibly narrowed) suite.
        store: where each completed unit is written, one transaction per unit.
        executor: how units run (default: a local process pool over every core).
        resume: skip units already in the store (failed units were not stored, so they run
            again). Without it, a store that already holds some of the suite's units is an
            error, so that a result is never silently mixed in.
        chunk: replicates per unit.
        device: torch device for agents that use one.
        propensities: record each decision's propensity (for off-policy evaluation).
        propensity_samples: the most Monte Carlo draws per decision for propensities.
        propensity_rse: target relative standard error of each logged propensity (None:
            always ``propensity_samples`` draws).
        progress: show a progress bar with ETA (tqdm, on stderr).
        check_agents: first check, in this process, each user agent (settings tagged
            ``"user"``, from :meth:`Suite.with_agent`) with one step on each of its env
            configurations (:func:`gambit_gym.bench.preflight.check_agent`); notices (skipped
            or slow propensities) go to stderr.
        shard: ``(i, n)``: run only the ``i``-th of ``n`` interleaved parts of the suite's units
            (1-based), so that ``n`` machines can share a suite and ``gambit-gym merge`` their
            stores into the store one run would have written (same suite fingerprint).

    Raises:
        ValueError: the store already holds units of this sweep and ``resume`` is False, or
            ``shard`` is not ``(i, n)`` with ``1 <= i <= n``.
        AgentCheckError: a user agent failed its check (one line saying what to fix).
    """
    start = time.perf_counter()
    if check_agents:
        for notice in check_user_agents(suite, propensities, propensity_samples,
                                        propensity_rse):
            print(f"notice: {notice}", file=sys.stderr)
    units = plan(suite, chunk=chunk, device=device, propensities=propensities,
                 propensity_samples=propensity_samples, propensity_rse=propensity_rse)
    if shard is not None:
        i, n = shard
        if not (isinstance(i, int) and isinstance(n, int) and 1 <= i <= n):
            raise ValueError(f"shard must be I/N with 1 <= I <= N (e.g. 1/2 and 2/2), got "
                             f"{i}/{n}")
        units = units[i - 1::n]
    done = store.unit_ids()
    todo = [u for u in units if u.unit_id not in done]
    skipped = len(units) - len(todo)
    if skipped and not resume:
        raise ValueError(f"{store.path} already holds {skipped} of the {len(units)} units of "
                         f"suite {suite.name!r}; pass --resume to continue it, or use another "
                         "--out")
    store.add_suite(suite)
    writer = store.claim()
    executor = executor or LocalExecutor()
    ran = dups = 0
    failures: list[UnitFailure] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(units), initial=skipped, unit="unit", desc=suite.name,
                   dynamic_ncols=True)
    try:
        for record in executor.map_units(todo):
            if isinstance(record, UnitFailure):
                failures.append(record)
                if bar is not None:
                    bar.write(f"failed: {record.describe()}")
                    bar.update(1)
                continue
            if store.add(record, writer=writer):
                ran += 1
            else:
                dups += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        store.release(writer)
    return SweepReport(planned=len(units), skipped=skipped, ran=ran, duplicates=dups,
                       wall_time_s=time.perf_counter() - start, failures=failures)
