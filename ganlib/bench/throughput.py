"""The throughput benchmark: versions (a), (b) and (c) built, warmed up and timed in interleaved windows."""
from __future__ import annotations

import datetime
import gc
import statistics
from dataclasses import dataclass, field

import torch

from ..command import UsageError
from ..env import default_device, seed_everything
from ..models import DCGANDiscriminator, DCGANGenerator
from ..train import CUDAGRAPH_MODES, GANConfig, GANTrainer
from .classic_loop import LATENT_DIM, ClassicLoop, classic_dataset, mnist_tensors
from .measure import (command_line, device_name, flops_per_image, matmul_rate, max_rss_mb, synchronize,
                      time_window, versions_line, write_section)

VERSIONS = {"a": "classic loop", "b": "ganlib default", "c": "ganlib fast"}


def ganlib_config(version: str, batch_size: int, device, compile_mode=None, seed: int = 0, cuda_graph: bool = False):
    """The GANConfig of version ``"b"`` (defaults) or ``"c"`` (the fast path)."""
    base = dict(batch_size=batch_size, device=str(device), seed=seed, progress=False, steps=0)
    if version == "b":
        return GANConfig(**base)
    return GANConfig(**base, bf16=True, fused_adam=True, channels_last=True, cuda_graph=cuda_graph,
                     compile=compile_mode or False, log_every=10**9)


def ganlib_trainer(version: str, images: torch.Tensor, batch_size: int, device, compile_mode=None, seed: int = 0,
                   cuda_graph: bool = False):
    """A seeded :class:`~ganlib.train.GANTrainer` of version ``"b"`` or ``"c"``: the 28x28 DCGAN on ``images``."""
    seed_everything(seed)
    G = DCGANGenerator(LATENT_DIM, image_size=28, channels=1)
    D = DCGANDiscriminator(image_size=28, channels=1)
    return GANTrainer(G, D, images, ganlib_config(version, batch_size, device, compile_mode, seed, cuda_graph))


def trainer_runner(trainer):
    """A function that trains ``n`` more steps through ``fit()`` (the code path users run)."""
    def run(n: int) -> None:
        trainer.config.steps = trainer.step + n
        trainer.fit()

    return run


@dataclass
class Result:
    version: str
    images_per_s: float
    window_images_per_s: list = field(default_factory=list)
    peak_memory: str = "n/a"
    flops_per_image: float = float("nan")
    matmul_fraction: float = float("nan")
    note: str = ""


def fast_settings(cuda_graph: str, compile_flag: str, device) -> list[tuple[bool, str | None]]:
    """The (cuda_graph, compile mode) settings of version (c) to try, best first.

    ``auto`` on CUDA: one CUDA graph per step with compiled (fused) kernels inside it, then without
    compiling, then torch.compile's own CUDA graphs ("reduce-overhead"), then plain eager. A later
    setting is only tried when building or warming up an earlier one fails. On the CPU: compile.
    """
    cuda = torch.device(device).type == "cuda"
    graphs = {"auto": [True, False] if cuda else [False], "on": [True], "off": [False]}[cuda_graph]
    candidates = []
    for graph in graphs:
        if compile_flag != "auto":
            modes = [None if compile_flag == "none" else compile_flag]
        elif graph:
            modes = ["default", None]
        else:
            modes = ["reduce-overhead", None] if cuda else ["default"]
        candidates += [(graph, mode) for mode in modes if (graph, mode) not in candidates
                       and not (graph and mode in CUDAGRAPH_MODES)]  # those make their own graphs
    if not candidates:
        raise UsageError(f"--cuda-graph on cannot be combined with --compile {compile_flag} (it makes its own "
                         "CUDA graphs); use --compile default or max-autotune-no-cudagraphs")
    return candidates


@dataclass
class Prepared:
    """A version built and warmed up, ready to be timed."""
    version: str
    run: object  # run(n): train n more steps
    flops_per_image: float
    peak_memory: str
    note: str


def prepare_version(version: str, args, images, real_mnist: bool, fast=(False, None)) -> Prepared:
    """Build one version, count its FLOPs, run its warm-up steps; measure its peak device memory.

    The memory figure is what this version allocates on top of what was already allocated (its
    data, models, optimizer state, activations and any CUDA graph pools), over build and warm-up.
    ``fast`` is (cuda_graph, compile mode) of version (c).
    """
    device = torch.device(args.device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    if version == "a":
        loop = ClassicLoop(classic_dataset(real_mnist), args.batch_size, device, args.workers, args.seed)
        flops = flops_per_image(loop.step, args.batch_size)  # also the first warm-up step

        def run(n):
            for _ in range(n):
                loop.step()

        note = f"DataLoader with {args.workers} workers, fp32, BCELoss, .item() every step"
        run(max(args.warmup - 1, 0))
    else:
        cuda_graph, compile_mode = fast if version == "c" else (False, None)
        trainer = ganlib_trainer(version, images, args.batch_size, device, compile_mode, args.seed, cuda_graph)
        run = trainer_runner(trainer)
        cfg = trainer.config
        note = (f"bf16={trainer.use_bf16}, channels_last={trainer.use_channels_last}, compile={cfg.compile}, "
                f"cuda_graph={trainer.use_cuda_graph}, fused_adam={cfg.fused_adam and device.type == 'cuda'}, "
                f"log_every={cfg.log_every}")
        run(args.warmup)
    synchronize(device)
    if device.type == "cuda":
        peak = f"{(torch.cuda.max_memory_allocated(device) - base) / 2**20:,.0f} MiB"
    else:
        peak = "n/a (CPU)"
    if version != "a":
        # count on an eager twin over a few images: compilation, bf16 and memory layout change no
        # FLOP count, and FlopCounterMode (a dispatch mode) is best kept away from Dynamo tracing
        twin = ganlib_trainer("b", images[:2 * args.batch_size], args.batch_size, device, None, args.seed)
        inputs = twin.draw_inputs()
        flops = flops_per_image(lambda: twin.train_step(inputs), args.batch_size)
        del twin
    return Prepared(version, run, flops, peak, note)


def format_table(results: list[Result], rate_label: str) -> str:
    """The results as a Markdown table, with each version's speed relative to (a)."""
    base = {r.version: r.images_per_s for r in results}.get("a")
    lines = ["| version | images/s (median) | vs (a) | peak device memory | FLOPs / image | "
             f"fraction of {rate_label} | settings |",
             "|---|---:|---:|---|---:|---:|---|"]
    for r in results:
        ratio = f"{r.images_per_s / base:.2f}x" if base else "-"
        lines.append(f"| ({r.version}) {VERSIONS[r.version]} | {r.images_per_s:,.0f} | {ratio} | {r.peak_memory} | "
                     f"{r.flops_per_image / 1e6:,.1f} MFLOP | {r.matmul_fraction:.2%} | {r.note} |")
    return "\n".join(lines)


def ratios_line(results: list[Result]) -> str:
    """Median ratios b/a and c/a, and in how many interleaved windows each version beat (a)."""
    by = {r.version: r for r in results}
    if "a" not in by:
        return "ratios: n/a (version a not run)"
    parts = []
    for v in ("b", "c"):
        if v in by:
            wins = sum(x > y for x, y in zip(by[v].window_images_per_s, by["a"].window_images_per_s))
            parts.append(f"{v}/a = {by[v].images_per_s / by['a'].images_per_s:.2f} "
                         f"({v} faster than a in {wins} of {len(by['a'].window_images_per_s)} windows)")
    return "ratios: " + "; ".join(parts)


def throughput(args, argv) -> list[Result]:
    """``python -m ganlib.bench``: build and warm up each version, time them in interleaved windows,
    print the table (and append it to ``args.out``); returns one :class:`Result` per version."""
    args.device = str(default_device(args.device))
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    versions = list(args.versions)  # checked by the command line: a non-empty list of VERSIONS' keys
    fast_candidates = fast_settings(args.cuda_graph, args.compile, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the DCGAN example does; a process-wide flag
    images, source = mnist_tensors("cpu")
    real_mnist = source.startswith("MNIST")
    # the peak matmul rate is measured before the runs and after every round of windows; the
    # highest measurement counts (on a shared machine a single one may catch a slow spell)
    rate, rate_what = matmul_rate(device)
    matmul_rates = [rate]
    rate_label = "bf16 matmul rate" if device.type == "cuda" else "fp32 matmul rate"
    header = [
        f"device: {device} ({device_name(device)})",
        f"versions: {versions_line()}",
        f"data: {source}",
        f"batch size {args.batch_size}; per version {args.warmup} warm-up steps, then {args.repeats} timed "
        f"windows of {args.steps} steps (interleaved across versions); median images/s",
    ]
    print("\n".join(header + [f"matmul rate: {rate / 1e12:.3f} TFLOP/s ({rate_what})"]), flush=True)
    prepared = []
    for v in versions:
        print(f"building and warming up ({v}) {VERSIONS[v]} ...", flush=True)
        if v != "c":
            prepared.append(prepare_version(v, args, images, real_mnist))
            continue
        failures = []
        for i, fast in enumerate(fast_candidates):
            try:
                p = prepare_version(v, args, images, real_mnist, fast)
            except Exception as err:  # an untried combination on this device: say so, try the next one
                if i == len(fast_candidates) - 1:
                    raise
                failure = f"cuda_graph={fast[0]}, compile={fast[1]} failed ({type(err).__name__}: {str(err)[:200]})"
                print(f"  {failure}; trying the next setting", flush=True)
                failures.append(failure)
                gc.collect()
                continue
            if failures:
                p.note += "; fell back after: " + " / ".join(failures)
            prepared.append(p)
            break
    # windows interleave the versions (a, b, c, a, b, c, ...), so that a slow spell of a shared
    # machine hits all of them alike; each version's median over its windows is reported
    rates: dict[str, list[float]] = {p.version: [] for p in prepared}
    for r in range(args.repeats):
        for p in prepared:
            rates[p.version].append(time_window(p.run, device, args.steps, args.batch_size))
        print(f"window {r + 1}/{args.repeats}: "
              + ", ".join(f"({v}) {x[-1]:,.0f}" for v, x in rates.items()) + " images/s", flush=True)
        matmul_rates.append(matmul_rate(device, repeats=3)[0])
    rate = max(matmul_rates)
    header.append(f"measured matmul rate: {rate / 1e12:.3f} TFLOP/s ({rate_what}; highest of "
                  f"{len(matmul_rates)} measurements taken between the rounds of windows)")
    results = []
    for p in prepared:
        median = statistics.median(rates[p.version])
        results.append(Result(p.version, median, rates[p.version], p.peak_memory, p.flops_per_image,
                              p.flops_per_image * median / rate, p.note))
    table = format_table(results, rate_label)
    ratios = ratios_line(results)
    if device.type != "cuda":
        ratios += f". Process max RSS {max_rss_mb():,.0f} MiB (all versions together)."
    print("\n" + header[-1] + "\n\n" + table + "\n" + ratios)
    if args.out:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join([f"- {h}" for h in [f"date: {date}", f"command: `{command_line(argv)}`", *header]]
                         + ["", table, "", ratios, *([f"\n{args.note}"] if args.note else [])])
        path = write_section(args.out, f"{date}, {device_name(device)}, batch {args.batch_size}", body)
        print(f"appended to {path}")
    return results
