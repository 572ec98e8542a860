"""Where batch jobs run. Both engines keep one long-lived worker per slot that runs job after job (its models stay
loaded), hand out one job per idle worker, and report a worker that died mid-job as a "lost" result so that the
driver puts its job back in the queue.

- `LocalEngine`: worker processes on this machine (multiprocessing, spawn), one per GPU in full mode, else as
  many as the cores and memory allow.
- `RayEngine`: Ray actors with their resources declared (num_gpus=1 in full mode), on a running cluster (by
  address) or a local Ray started for the batch. Ray is an optional extra (`pip install headforge[ray]`).

An engine's interface: `free()` idle slots, `busy()` running jobs, `submit(task)` → worker pid, `poll(timeout)` →
finished results, `cancel()` stops the running jobs (their "cancelled" results come back from it or from poll),
`close()`.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import time
from multiprocessing.connection import wait as wait_any
from pathlib import Path

from ..errors import DependencyError, HeadForgeError
from .worker import local_worker_main, run_one

# Resident memory budgeted per worker with its models loaded (instant mode measured ~0.7 GB: the driver and one
# worker peak at 0.85 GB, two workers at 1.5 GB, benchmarks/batch.py; the budget leaves room for large photos);
# full mode holds the multi-view model in GPU memory and ~6 GB of host memory while loading it.
WORKER_MEMORY = {"instant": 1.2e9, "views": 4e9, "full": 6e9}


def lost_result(name: str, pid: int | None, why: str) -> dict:
    return {"name": name, "status": "lost", "pid": pid, "warm": False, "warnings": [], "stages": [],
            "stage_seconds": {}, "seconds": 0.0,
            "error": {"code": "batch.worker_lost", "message": f"The worker running this job stopped ({why}).",
                      "hint": "the job goes back to the queue and resumes from its finished stages"}}


def cancelled_result(name: str, pid: int | None) -> dict:
    return {"name": name, "status": "cancelled", "pid": pid, "warm": False, "warnings": [], "stages": [],
            "stage_seconds": {}, "seconds": 0.0,
            "error": {"code": "cancelled", "message": "Cancelled by the user; run again to resume.", "hint": None}}


def gpu_count() -> int:
    """NVIDIA GPUs visible to this process (CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`), without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def available_memory() -> float:
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:  # psutil comes with the usual install; without it, assume memory is not the limit
        return float("inf")


def local_workers(mode: str, jobs: int, requested: int | None = None) -> int:
    """How many local workers: `requested`, else one per GPU in full mode, else the cores bounded by memory;
    never more than there are jobs."""
    if requested:
        n = requested
    elif mode == "full":
        n = max(1, gpu_count())
    else:
        by_memory = int(0.8 * available_memory() // WORKER_MEMORY.get(mode, 2e9))
        n = max(1, min(os.cpu_count() or 1, by_memory))
    return max(1, min(n, jobs))


class _LocalWorker:
    def __init__(self, ctx, index: int, env: dict, log_path: str | None):
        self.index = index
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=local_worker_main, args=(child, env, log_path), daemon=True,
                                name=f"headforge-batch-{index}")
        self.proc.start()
        child.close()
        self.task: dict | None = None


class LocalEngine:
    name = "local"

    def __init__(self, workers: int, mode: str, log_dir: Path | None = None):
        self.n, self.mode, self.log_dir = workers, mode, log_dir
        self._ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited threads or locks
        threads = max(1, (os.cpu_count() or 1) // workers)
        gpus = gpu_count() if mode == "full" else 0
        self._envs = []
        for i in range(workers):
            env = {k: os.environ.get(k, str(threads)) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
            self._envs.append(env)
        self.workers = [self._spawn(i) for i in range(workers)]

    def _spawn(self, i: int) -> _LocalWorker:
        log = str(self.log_dir / f"worker-{i}.log") if self.log_dir else None
        return _LocalWorker(self._ctx, i, self._envs[i], log)

    def free(self) -> int:
        return sum(w.task is None for w in self.workers)

    def busy(self) -> int:
        return sum(w.task is not None for w in self.workers)

    def submit(self, task: dict) -> int:
        w = next(w for w in self.workers if w.task is None)
        w.task = task
        try:
            w.conn.send(task)
        except (OSError, EOFError):
            pass  # it died between jobs: poll() sees its sentinel and reports the job lost
        return w.proc.pid

    def poll(self, timeout: float) -> list[dict]:
        busy = [w for w in self.workers if w.task is not None]
        if not busy:
            time.sleep(timeout)
            return []
        ready = wait_any([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout)
        results = []
        for w in busy:
            if w.conn in ready:
                try:
                    result = w.conn.recv()
                except (EOFError, OSError):
                    result = None
                if result is not None:
                    w.task = None
                    results.append(result)
                    continue
            if w.proc.sentinel in ready or not w.proc.is_alive():
                w.proc.join(5)
                results.append(lost_result(w.task["name"], w.proc.pid, _exit_reason(w.proc.exitcode)))
                self.workers[w.index] = self._spawn(w.index)
        return results

    def cancel(self) -> list[dict]:
        """Pass a cancel to the busy workers; their "cancelled" results come back through poll()."""
        for w in self.workers:
            if w.task is not None and w.proc.is_alive():
                os.kill(w.proc.pid, signal.SIGINT)  # the worker's handler cancels its job at the next step
        return []

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except (OSError, EOFError):
                pass
        deadline = time.time() + 20
        for w in self.workers:
            w.proc.join(max(0.1, deadline - time.time()))
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join(5)
            w.conn.close()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class _RayJobRunner:
    """A Ray actor running job after job in one worker process (its models stay loaded)."""

    def __init__(self, env: dict):
        os.environ.update(env)

    def pid(self) -> int:
        return os.getpid()

    def run(self, task: dict) -> dict:
        return run_one(task)


class RayEngine:
    name = "ray"

    def __init__(self, workers: int | None, mode: str, address: str | None = None, jobs: int = 1):
        try:
            import ray  # optional extra: imported only when the ray engine is chosen
        except ImportError as e:
            raise DependencyError("The ray engine needs Ray: pip install 'headforge[ray]'.",
                                  code="batch.ray_missing") from e
        self.ray, self.mode = ray, mode
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING, configure_logging=True,
                         **({} if address else {"num_cpus": workers or os.cpu_count() or 1}))
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise HeadForgeError(f"Cannot reach the Ray cluster at {address or 'a new local instance'}: {e}",
                                     code="batch.ray_unreachable",
                                     hint="start one with `ray start --head`, or leave out --address") from e
            self._started = True
        res = ray.cluster_resources()
        gpus = mode == "full"
        if gpus and res.get("GPU", 0) < 1:
            raise HeadForgeError("Full mode on Ray needs GPUs in the cluster; it reports none.",
                                 code="batch.no_gpu", hint="use --mode instant, or add GPU nodes")
        slots = int(res.get("GPU", 0)) if gpus else int(res.get("CPU", 1))
        self.n = max(1, min(workers or slots, jobs))
        self._opts = {"num_cpus": 1, "num_gpus": 1 if gpus else 0, "max_restarts": 0, "max_task_retries": 0}
        self._actor_cls = ray.remote(_RayJobRunner)
        self.actors = [self._new_actor() for _ in range(self.n)]
        self._running: dict = {}  # ObjectRef -> (actor index, task)

    def _new_actor(self):
        env = {"OMP_NUM_THREADS": "1"} if self.mode != "full" else {}
        actor = self._actor_cls.options(**self._opts).remote(env)
        return {"actor": actor, "pid": self.ray.get(actor.pid.remote()), "task": None}

    def free(self) -> int:
        return sum(a["task"] is None for a in self.actors)

    def busy(self) -> int:
        return len(self._running)

    def submit(self, task: dict) -> int:
        i = next(i for i, a in enumerate(self.actors) if a["task"] is None)
        a = self.actors[i]
        a["task"] = task
        self._running[a["actor"].run.remote(task)] = i
        return a["pid"]

    def poll(self, timeout: float) -> list[dict]:
        if not self._running:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(list(self._running), num_returns=len(self._running), timeout=timeout)
        results = []
        for ref in ready:
            i = self._running.pop(ref)
            a = self.actors[i]
            name = a["task"]["name"]
            a["task"] = None
            try:
                results.append(self.ray.get(ref))
            except self.ray.exceptions.RayActorError as e:
                results.append(lost_result(name, a["pid"], type(e).__name__))
                self.actors[i] = self._new_actor()
            except self.ray.exceptions.RayError as e:  # a failure of Ray itself, not of the job
                results.append(lost_result(name, a["pid"], f"{type(e).__name__}: {str(e)[:200]}"))
        return results

    def cancel(self) -> list[dict]:
        """Actors run one job at a time and Ray cannot interrupt a running actor task: the busy actors are
        stopped (the OS drops their job locks; the job folders resume from their finished stages)."""
        results = []
        for ref, i in list(self._running.items()):
            a = self.actors[i]
            self.ray.kill(a["actor"], no_restart=True)
            results.append(cancelled_result(a["task"]["name"], a["pid"]))
            a["task"] = None
        self._running.clear()
        return results

    def close(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a["actor"], no_restart=True)
            except Exception:  # noqa: BLE001  (already gone)
                pass
        if self._started:
            self.ray.shutdown()
