"""``python -m ganlib.bench [fid-parity] ...``: the benchmark's command line."""
from __future__ import annotations

import argparse
import sys

from . import __doc__ as BENCH_DOC
from .fid_parity import fid_parity
from .throughput import throughput
from .vae_examples import vae_benchmark


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
    if argv and argv[0] == "vae":
        parser = argparse.ArgumentParser(prog="python -m ganlib.bench vae",
                                         description="pytorch/examples' VAE loop against ganlib's VAETrainer: "
                                                     "images/s and the example's test loss after equal epochs.")
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--batch-size", type=int, default=128)
        parser.add_argument("--seed", type=int, default=1, help="default 1, the example's")
        parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
        parser.add_argument("--diagnose", action="store_true",
                            help="also run the example with its loss averaged over the batch, and with its "
                                 "encoder fed [-1, 1]: which of ganlib's differences moves the test loss")
        parser.add_argument("--out", default=None, help="append a results section to this markdown file")
        parser.add_argument("--note", default="", help="a line of text added to the --out section")
        parser.add_argument("--json", default=None, help="also write the numbers to this JSON file "
                                                         "(the VAE chapter reads book/results/vae_bench.json)")
        return vae_benchmark(parser.parse_args(argv[1:]), argv)
    parser = argparse.ArgumentParser(prog="python -m ganlib.bench", description=BENCH_DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(parser)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed window")
    parser.add_argument("--repeats", type=int, default=5, help="timed windows; the median is reported")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps before the first window")
    parser.add_argument("--versions", default="a,b,c", help="comma-separated subset of a,b,c")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the classic loop")
    parser.add_argument("--note", default="", help="a line of text added to the --out section")
    return throughput(parser.parse_args(argv), argv)
