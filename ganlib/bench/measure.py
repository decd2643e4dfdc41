"""What the benchmark measures with: device syncs, the matmul rate, FLOP counts, timed windows,
and the lines it writes into ``bench/RESULTS.md``."""
from __future__ import annotations

import platform
import resource
import shlex
import sys
import time
from pathlib import Path

import torch

from .. import __version__

def synchronize(device) -> None:
    """Wait for the device's queued work (CUDA, MPS); nothing to wait for on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_name(device) -> str:
    """The GPU's name, or the CPU's with the torch thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine() or 'cpu'} CPU, {torch.get_num_threads()} torch threads"


def matmul_rate(device, size: int | None = None, repeats: int = 10) -> tuple[float, str]:
    """Measured dense matmul rate in FLOP/s: bf16 on CUDA, fp32 on the CPU; and a description."""
    device = torch.device(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    n = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(3):
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        times.append((time.perf_counter() - t0) / repeats)
    rate = 2 * n**3 / min(times)
    return rate, f"{str(dtype).removeprefix('torch.')} {n}x{n} matmul"


def flops_per_image(step, batch_size: int) -> float:
    """Matmul/convolution FLOPs of one call of ``step()`` divided by the batch size."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / batch_size


def max_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB."""
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

def time_window(run, device, steps: int, batch_size: int) -> float:
    """Images/s of one window of ``steps`` steps, with the device synchronised at both ends."""
    synchronize(device)
    t0 = time.perf_counter()
    run(steps)
    synchronize(device)
    return steps * batch_size / (time.perf_counter() - t0)


def versions_line() -> str:
    """One line of versions: python, torch, torchvision, ganlib, and CUDA where available."""
    import torchvision  # only for its version

    cuda = f" | CUDA {torch.version.cuda}" if torch.cuda.is_available() else ""
    return (f"python {platform.python_version()} | torch {torch.__version__} | "
            f"torchvision {torchvision.__version__} | ganlib {__version__}{cuda}")


def write_section(path, title: str, body: str) -> Path:
    """Append a ``## title`` section to the Markdown file ``path`` (made, with a heading, if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("# ganlib benchmark results\n\nWritten by `python -m ganlib.bench --out ...`; "
                        "see `ganlib/bench/` for what each version does.\n")
    with path.open("a") as f:
        f.write(f"\n## {title}\n\n{body}\n")
    return path


def command_line(argv) -> str:
    """The benchmark's command line for ``argv``, shell-quoted."""
    return "python -m ganlib.bench " + " ".join(shlex.quote(a) for a in argv)
