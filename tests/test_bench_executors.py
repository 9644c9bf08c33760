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
