"""Run-time plumbing of training: device choice, seeds, threads, machine description, timers."""
from __future__ import annotations

import os
import platform
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` if given, else cuda when available, else cpu."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int, num_threads: int = 0) -> None:
    """Seed Python, numpy and torch; optionally fix torch's CPU thread count."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if num_threads > 0:
        torch.set_num_threads(num_threads)


def machine() -> dict:
    """What ran the job, for results files."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine()}
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


class Timer:
    """Named sections: `with timer('cnn iteration 0'): ...`; `timer.seconds` holds their wall-clock
    seconds and `timer.cpu_seconds` this process's CPU seconds (on a shared machine the two differ)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t0, 2)
            self.cpu_seconds[name] = round(self.cpu_seconds.get(name, 0.0) + time.process_time() - c0, 2)

    def total(self) -> float:
        return round(time.perf_counter() - self.start, 2)

    def cpu_total(self) -> float:
        return round(time.process_time() - self.cpu_start, 2)


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages (how busy the shared machine was)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []
