"""How fast does ganlib train? DCGAN on MNIST, timed three ways in one run.

::

    python -m ganlib.bench                                # all three versions, printed as a table
    python -m ganlib.bench --batch-size 512 --out bench/RESULTS.md
    python -m ganlib.bench fid-parity --steps 3000        # does the fast path train as well as fp32?

The throughput benchmark trains the same DCGAN (ganlib's 28x28 :class:`~ganlib.models.DCGANGenerator`
and :class:`~ganlib.models.DCGANDiscriminator`), with the same batch size and number of steps, as

* **(a) classic**: the loop of the canonical PyTorch DCGAN example (``pytorch/examples/dcgan``):
  the torchvision dataset through a ``DataLoader`` with worker processes and ``ToTensor`` +
  ``Normalize`` transforms, fp32, a sigmoid output with ``BCELoss``, two separate Adam optimizers,
  and ``.item()`` on the losses and D outputs every step for the log line;
* **(b) ganlib default**: :class:`~ganlib.train.GANTrainer` with its default :class:`~ganlib.train.GANConfig`
  (data resident on the device, channels_last layout, bf16 autocast and fused Adam on CUDA, host
  syncs only every ``log_every`` steps);
* **(c) ganlib fast**: the same trainer with ``compile=...`` (``torch.compile`` of the models;
  ``"reduce-overhead"`` adds CUDA graphs) and no host sync until the end of each timed window.

Each version runs ``--warmup`` untimed steps (compilation, cuDNN autotuning, worker start-up),
then ``--repeats`` timed windows of ``--steps`` steps; the device is synchronised around each
window and the median images/s is reported. For each version the table also gives the peak device
memory, the matmul/convolution FLOPs of one training step per image (counted with
``torch.utils.flop_counter.FlopCounterMode``), and the achieved fraction of the device's matmul
rate, measured in the same run with a large bf16 matmul (CUDA) or fp32 matmul (CPU).

MNIST comes from :func:`ganlib.data.load_mnist` when it is on disk (``$GANLIB_DATA``); otherwise
random tensors (and torchvision's ``FakeData`` for the classic loop) of the same shape stand in,
and the output says so.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import platform
import resource
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

LATENT_DIM = 100
IMAGE_SHAPE = (1, 28, 28)
MNIST_TRAIN_SIZE = 60_000
VERSIONS = {"a": "classic loop", "b": "ganlib default", "c": "ganlib fast"}


# ----------------------------------------------------------------------------- data


def mnist_tensors(device="cpu", allow_random: bool = True):
    """``(images in [-1, 1], source description)``: MNIST if on disk, else random stand-ins."""
    from .data import DatasetNotFoundError, data_root, load_mnist

    try:
        images, _ = load_mnist("train", download=False)
        return images.to(device), f"MNIST train (60,000 images from {data_root()})"
    except DatasetNotFoundError:
        if not allow_random:
            raise
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(MNIST_TRAIN_SIZE, *IMAGE_SHAPE, generator=gen) * 2 - 1
    return images.to(device), "random tensors of MNIST's shape (MNIST not found under $GANLIB_DATA)"


def classic_dataset(real: bool):
    """The classic loop's dataset: torchvision MNIST (or FakeData) with ToTensor + Normalize."""
    import torchvision
    import torchvision.transforms as T

    from .data import data_root

    transform = T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    if real:
        return torchvision.datasets.MNIST(str(data_root()), train=True, download=False, transform=transform)
    return torchvision.datasets.FakeData(size=MNIST_TRAIN_SIZE, image_size=IMAGE_SHAPE, num_classes=10,
                                         transform=transform, random_offset=0)


# ----------------------------------------------------------------------------- (a) the classic loop


class ClassicLoop:
    """The training loop of PyTorch's DCGAN example, on ganlib's 28x28 DCGAN models.

    Written the way the example writes it: D ends in a sigmoid and trains with ``BCELoss`` on
    label tensors; D's step is two backward passes (real, then ``fake.detach()``); G's step reuses
    the same fakes; every step reads five numbers back with ``.item()`` for the log line.
    """

    def __init__(self, dataset, batch_size: int, device, workers: int = 2, seed: int = 0):
        from .env import seed_everything
        from .models import DCGANDiscriminator, DCGANGenerator

        seed_everything(seed)
        self.device = torch.device(device)
        self.netG = DCGANGenerator(LATENT_DIM, image_size=28, channels=1).to(self.device)
        self.netD = nn.Sequential(DCGANDiscriminator(image_size=28, channels=1), nn.Sigmoid()).to(self.device)
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        # drop_last keeps every timed batch the same size as the other versions' batches
        self.dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                                      num_workers=workers, drop_last=True)
        self.batches = self._forever()
        self.log_line = ""

    def _forever(self):
        epoch = 0
        while True:  # one pass over the DataLoader per epoch, as ``for epoch in range(...)`` does
            for i, data in enumerate(self.dataloader):
                yield epoch, i, data
            epoch += 1

    def step(self) -> None:
        real_label, fake_label = 1.0, 0.0
        epoch, i, data = next(self.batches)
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        self.netD.zero_grad()
        real_cpu = data[0].to(self.device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=self.device)
        output = self.netD(real_cpu).view(-1)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(batch_size, LATENT_DIM, device=self.device)
        fake = self.netG(noise)
        label.fill_(fake_label)
        output = self.netD(fake.detach()).view(-1)
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) Update G: maximize log(D(G(z)))
        self.netG.zero_grad()
        label.fill_(real_label)
        output = self.netD(fake).view(-1)
        errG = self.criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()
        # the example prints this line every step; we format it (printing thousands of lines
        # would time the terminal, not the training)
        self.log_line = (f"[{epoch}][{i}/{len(self.dataloader)}] Loss_D: {errD.item():.4f} "
                         f"Loss_G: {errG.item():.4f} D(x): {D_x:.4f} D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}")


# ----------------------------------------------------------------------------- (b), (c) ganlib


def ganlib_config(version: str, batch_size: int, device, compile_mode=None, seed: int = 0, cuda_graph: bool = False):
    """The GANConfig of version ``"b"`` (defaults) or ``"c"`` (the fast path)."""
    from .train import GANConfig

    base = dict(batch_size=batch_size, device=str(device), seed=seed, progress=False, steps=0)
    if version == "b":
        return GANConfig(**base)
    return GANConfig(**base, bf16=True, fused_adam=True, channels_last=True, cuda_graph=cuda_graph,
                     compile=compile_mode or False, log_every=10**9)


def ganlib_trainer(version: str, images: torch.Tensor, batch_size: int, device, compile_mode=None, seed: int = 0,
                   cuda_graph: bool = False):
    from .env import seed_everything
    from .models import DCGANDiscriminator, DCGANGenerator
    from .train import GANTrainer

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


# ----------------------------------------------------------------------------- measuring


def synchronize(device) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_name(device) -> str:
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
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


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
    from .train import CUDAGRAPH_MODES

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
        raise SystemExit(f"--cuda-graph on cannot be combined with --compile {compile_flag} (it makes its own "
                         "CUDA graphs); use --compile default or max-autotune-no-cudagraphs")
    return candidates


def time_window(run, device, steps: int, batch_size: int) -> float:
    """Images/s of one window of ``steps`` steps, with the device synchronised at both ends."""
    synchronize(device)
    t0 = time.perf_counter()
    run(steps)
    synchronize(device)
    return steps * batch_size / (time.perf_counter() - t0)


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
        flops = flops_per_image(twin.train_step, args.batch_size)
        del twin
    return Prepared(version, run, flops, peak, note)


# ----------------------------------------------------------------------------- reporting


def versions_line() -> str:
    import torchvision

    from . import __version__

    cuda = f" | CUDA {torch.version.cuda}" if torch.cuda.is_available() else ""
    return (f"python {platform.python_version()} | torch {torch.__version__} | "
            f"torchvision {torchvision.__version__} | ganlib {__version__}{cuda}")


def format_table(results: list[Result], rate_label: str) -> str:
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


def write_section(path, title: str, body: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("# ganlib benchmark results\n\nWritten by `python -m ganlib.bench --out ...`; "
                        "see `ganlib/bench.py` for what each version does.\n")
    with path.open("a") as f:
        f.write(f"\n## {title}\n\n{body}\n")
    return path


def command_line(argv) -> str:
    return "python -m ganlib.bench " + " ".join(shlex.quote(a) for a in argv)


# ----------------------------------------------------------------------------- throughput


def throughput(args, argv) -> list[Result]:
    from .env import default_device

    args.device = str(default_device(args.device))
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    unknown = [v for v in versions if v not in VERSIONS]
    if unknown or not versions:
        raise SystemExit(f"--versions takes a comma-separated subset of a,b,c; got {args.versions!r}")
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


# ----------------------------------------------------------------------------- FID parity


@contextlib.contextmanager
def full_fp32(enabled: bool = True):
    """Turn off TF32 (on by default for cuDNN convolutions) so that "fp32" means float32 math."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    if enabled:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def fid_parity(args, argv) -> dict:
    """Train fp32 eager and the fast path from the same seed; compare their MNIST FIDs."""
    from .classifier import classify, load_mnist_classifier
    from .data import load_mnist
    from .env import default_device
    from .metrics import frechet_distance_from_features
    from .train import GANConfig

    device = default_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda_graph, compile_mode = fast_settings(args.cuda_graph, args.compile, device)[0]
    images, _ = load_mnist("train", download=False)
    reference, _ = load_mnist("test", download=False)
    reference = reference[:args.n_samples]
    classifier = load_mnist_classifier(device=device)
    real_features, _ = classify(classifier, reference)
    paths = {
        "fp32": dict(bf16=False, channels_last=False, compile=False, fused_adam=False),
        "fast": dict(bf16=True, channels_last=True, compile=compile_mode or False, fused_adam=True,
                     cuda_graph=cuda_graph),
    }
    fids: dict[str, list[float]] = {name: [] for name in paths}
    seeds = [int(s) for s in str(args.seeds).split(",")]
    from .env import seed_everything
    from .models import DCGANDiscriminator, DCGANGenerator
    from .train import GANTrainer

    for seed in seeds:
        for name, opts in paths.items():
            seed_everything(seed)
            G = DCGANGenerator(LATENT_DIM, image_size=28, channels=1)
            D = DCGANDiscriminator(image_size=28, channels=1)
            cfg = GANConfig(steps=args.steps, batch_size=args.batch_size, device=str(device), seed=seed,
                            progress=False, log_every=max(args.steps // 10, 1), **opts)
            trainer = GANTrainer(G, D, images, cfg)
            t0 = time.perf_counter()
            with full_fp32(enabled=name == "fp32"):
                trainer.fit()
            seconds = time.perf_counter() - t0
            fake_features, _ = classify(classifier, trainer.sample(args.n_samples, seed=seed + 12345))
            fid = frechet_distance_from_features(real_features, fake_features)
            fids[name].append(fid)
            print(f"seed {seed} {name}: FID {fid:.3f} after {args.steps} steps ({seconds:.0f} s; "
                  f"bf16={trainer.use_bf16}, compile={cfg.compile}, cuda_graph={trainer.use_cuda_graph})", flush=True)
    fp32, fast = statistics.mean(fids["fp32"]), statistics.mean(fids["fast"])
    ratio = fast / fp32 if fp32 > 0 else float("inf")
    verdict = "PASS" if ratio <= 1.10 else "FAIL"
    summary = (f"MNIST FID (features of ganlib.classifier, {args.n_samples} samples vs {len(reference)} test "
               f"images, mean over seeds {seeds}): fp32 {fp32:.3f}, fast {fast:.3f}, ratio fast/fp32 = "
               f"{ratio:.3f} -> {verdict} (target: fast <= 1.10 x fp32 at equal steps)")
    print(summary)
    if args.out:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join([f"- date: {date}", f"- command: `{command_line(argv)}`",
                          f"- device: {device} ({device_name(device)})", f"- versions: {versions_line()}",
                          "", summary])
        write_section(args.out, f"{date}, FID parity, {device_name(device)}", body)
    return {"fp32": fids["fp32"], "fast": fids["fast"], "ratio": ratio, "verdict": verdict}


# ----------------------------------------------------------------------------- command line


def _common(parser) -> None:
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda if available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--compile", default="auto",
                        help="torch.compile mode of the fast path: none, default, reduce-overhead (CUDA graphs), "
                             "max-autotune, max-autotune-no-cudagraphs; auto: see --cuda-graph")
    parser.add_argument("--cuda-graph", default="auto", choices=("auto", "on", "off"),
                        help="capture each whole step of the fast path in one CUDA graph; auto (CUDA): try "
                             "cuda graph + compile=default, then cuda graph alone, then compile=reduce-overhead")
    parser.add_argument("--out", default=None, help="append a results section to this markdown file")


def main(argv=None):
    """Run the command line; returns the results (a list of :class:`Result`, or the FID report)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fid-parity":
        parser = argparse.ArgumentParser(prog="python -m ganlib.bench fid-parity",
                                         description="Train DCGAN on MNIST in fp32 and on the fast path "
                                                     "(bf16, channels_last, compile) from the same seed; "
                                                     "compare their MNIST FIDs.")
        _common(parser)
        parser.add_argument("--steps", type=int, default=3000)
        parser.add_argument("--seeds", default="0", help="comma-separated seeds; FIDs are averaged")
        parser.add_argument("--n-samples", type=int, default=10_000)
        return fid_parity(parser.parse_args(argv[1:]), argv)
    parser = argparse.ArgumentParser(prog="python -m ganlib.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(parser)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed window")
    parser.add_argument("--repeats", type=int, default=5, help="timed windows; the median is reported")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps before the first window")
    parser.add_argument("--versions", default="a,b,c", help="comma-separated subset of a,b,c")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the classic loop")
    parser.add_argument("--note", default="", help="a line of text added to the --out section")
    return throughput(parser.parse_args(argv), argv)


if __name__ == "__main__":
    main()  # the return value is for tests; the command prints what it found
