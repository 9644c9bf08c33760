"""The process-pool and Ray executors give the same records as the serial one."""

import importlib.util

import numpy as np
import pytest

from gambit_gym.bench import suites
from gambit_gym.bench.executors import LocalExecutor, SerialExecutor, make_executor, sweep
from gambit_gym.bench.store import ResultStore


def _suite():
    return suites.get("one_d").narrow(replicates=3, horizon=25,
                                      agents=["Random", "Oracle", "StdTS"])


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    store = ResultStore(tmp_path_factory.mktemp("serial") / "serial.sqlite")
    sweep(_suite(), store, executor=SerialExecutor(), chunk=2, progress=False,
          propensity_samples=50)
    return store


def _assert_same(a_store, b_store):
    a = {r.unit.unit_id: r for r in a_store.records(logs=True)}
    b = {r.unit.unit_id: r for r in b_store.records(logs=True)}
    assert set(a) == set(b) and len(a) == 6
    for uid, rec in a.items():
        np.testing.assert_array_equal(rec.actions, b[uid].actions)
        np.testing.assert_array_equal(rec.final_regret, b[uid].final_regret)
        np.testing.assert_array_equal(rec.propensities, b[uid].propensities)


def test_make_executor():
    assert isinstance(make_executor("local", workers=1), SerialExecutor)
    assert make_executor("local").workers >= 1
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("dask")


def test_process_pool_equals_serial(serial, tmp_path):
    pooled = ResultStore(tmp_path / "pool.sqlite")
    sweep(_suite(), pooled, executor=LocalExecutor(workers=2), chunk=2, progress=False,
          propensity_samples=50)
    _assert_same(serial, pooled)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed (pip install 'gambit-gym[ray]')")
def test_ray_executor_equals_serial(serial, tmp_path, monkeypatch):
    """Without an address the executor starts its own instance, whatever cluster the machine
    names (here RAY_ADDRESS points at nothing: attaching to it would fail)."""
    from gambit_gym.bench.executors import RayExecutor

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    suite = _suite()
    executor = RayExecutor(num_cpus=1)
    try:
        distributed = ResultStore(tmp_path / "ray.sqlite")
        report = sweep(suite, distributed, executor=executor, chunk=2, progress=False,
                       propensity_samples=50)
    finally:
        executor.shutdown()
    assert report.ran == report.planned == 6
    _assert_same(serial, distributed)


def test_pool_workers_run_the_numba_kernels_on_one_thread():
    """A worker per core: the ensemble kernels must not start a thread per core in each."""
    pytest.importorskip("numba")
    import subprocess
    import sys

    from bench_helpers import subprocess_env

    env = {k: v for k, v in subprocess_env().items() if k != "NUMBA_NUM_THREADS"}
    code = ("from gambit_gym.bench.executors import _init_worker; _init_worker(); "
            "import numba; print(numba.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


# ------------------------------------------------------------------ bench --ray-address
_needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="Ray is not installed (pip install 'gambit-gym[ray]')")


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bench_ray(address: str, out, timeout: float, auth_mode: str | None = None):
    import subprocess

    from bench_helpers import cli, subprocess_env

    env = {k: v for k, v in subprocess_env().items() if k != "RAY_AUTH_MODE"}
    if auth_mode is not None:
        env["RAY_AUTH_MODE"] = auth_mode

    args = cli("bench", "--suite", "one_d", "--replicates", "3", "--horizon", "25",
               "--agents", "Random,Oracle,StdTS", "--chunk", "2", "--propensity-samples", "50",
               "--executor", "ray", "--ray-address", address, "--out", str(out),
               "--no-progress")
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("address, match", [
    ("127.0.0.1:notaport", "is not an address"),
    ("ray://:10001", "is not an address"),
    ("127.0.0.1:70000", "is not an address"),
])
def test_check_ray_address_refuses_malformed_addresses(address, match):
    from gambit_gym.bench.executors import check_ray_address

    with pytest.raises(ValueError, match=match):
        check_ray_address(address)


def test_check_ray_address_accepts_a_listening_port_and_leaves_auto_to_ray():
    import socket

    from gambit_gym.bench.executors import check_ray_address

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        check_ray_address(f"127.0.0.1:{port}")
        check_ray_address(f"ray://127.0.0.1:{port}")
    check_ray_address("auto")  # no host named: Ray finds the cluster itself
    with pytest.raises(ValueError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        check_ray_address(f"127.0.0.1:{port}")  # the same port, now closed


@_needs_ray
def test_bench_with_an_unreachable_ray_address_fails_fast_and_writes_nothing(tmp_path):
    """Ray itself retries an unreachable head for minutes; the CLI answers in seconds with the
    address, the problem and the fixes, and leaves no store behind."""
    import time

    port = _closed_port()
    out = tmp_path / "never.sqlite"
    start = time.monotonic()
    proc = _bench_ray(f"127.0.0.1:{port}", out, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert (f"gambit-gym bench: error: --ray-address '127.0.0.1:{port}': no Ray cluster "
            f"answers at 127.0.0.1:{port} (Connection refused") in proc.stderr
    assert f"ray start --head --port={port}" in proc.stderr
    assert "leave out --ray-address" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert elapsed < 60, f"took {elapsed:.0f} s to fail"


_HEAD = """
import sys, ray
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir=sys.argv[1])
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # hold the cluster until the test closes stdin
ray.shutdown()
"""


@_needs_ray
@pytest.mark.slow
def test_bench_on_a_real_ray_cluster_equals_serial(serial, tmp_path):
    """A real one-CPU Ray head, started in a separate process by this test, runs the bench
    sweep given by --ray-address; its records equal the serial run's bit for bit.

    Ray >= 2.50 starts clusters with token authentication; a driver given an explicit address
    joins only with RAY_AUTH_MODE=token (Ray's rule), so without it the CLI must say so."""
    import subprocess
    import sys
    import tempfile

    from bench_helpers import subprocess_env

    # Ray's socket paths must stay short: a temp dir under /tmp, not pytest's deep tmp_path
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = {k: v for k, v in subprocess_env().items() if k != "RAY_AUTH_MODE"}
    head = subprocess.Popen([sys.executable, "-c", _HEAD, ray_tmp], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        address = head.stdout.readline().strip()
        assert address.count(":") == 1, f"the head printed no address: {address!r}"
        refused = tmp_path / "refused.sqlite"
        proc = _bench_ray(address, refused, timeout=300)
        assert proc.returncode == 2
        assert f"--ray-address '{address}': Failed to connect to Ray cluster" in proc.stderr
        assert "RAY_AUTH_MODE=token" in proc.stderr and not refused.exists()
        out = tmp_path / "ray.sqlite"
        proc = _bench_ray(address, out, timeout=300, auth_mode="token")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "6 units run" in proc.stderr
        _assert_same(serial, ResultStore(out))
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        import shutil

        shutil.rmtree(ray_tmp, ignore_errors=True)
