"""``python -m ganlib.bench [fid-parity | vae] ...``: the benchmark's command line.

It shares the boundary of :mod:`ganlib.command`: every option value and output file is checked
before any work, errors are one line (exit status 2 for a wrong command line, 1 for anything
else) and ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import sys

import torch

from ..command import COUNT, POSITIVE_INT, CommaList, OneLineParser, check_output_file, number_type, run
from ..train import COMPILE_MODES
from . import __doc__ as BENCH_DOC
from .fid_parity import fid_parity
from .throughput import VERSIONS, throughput
from .vae_examples import vae_benchmark


def device(text: str) -> str:
    """An argparse type: a torch device name (``cuda``, ``cuda:1``, ``cpu``, ...) of a device this machine has."""
    try:
        chosen = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cuda, cuda:0 or cpu, got {text!r}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: torch sees no CUDA device on this machine")
    return text


def _parser(prog: str, **kwargs) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, **kwargs)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def _common(parser) -> None:
    parser.add_argument("--batch-size", type=POSITIVE_INT, default=128)
    parser.add_argument("--device", type=device, default=None, help="cuda, cpu, ... (default: cuda if available)")
    parser.add_argument("--seed", type=COUNT, default=0)
    parser.add_argument("--threads", type=COUNT, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--compile", default="auto", choices=("auto", "none") + COMPILE_MODES,
                        help="torch.compile mode of the fast path: none, default, reduce-overhead (CUDA graphs), "
                             "max-autotune, max-autotune-no-cudagraphs; auto: see --cuda-graph")
    parser.add_argument("--cuda-graph", default="auto", choices=("auto", "on", "off"),
                        help="capture each whole step of the fast path in one CUDA graph; auto (CUDA): try "
                             "cuda graph + compile=default, then cuda graph alone, then compile=reduce-overhead")
    parser.add_argument("--out", default=None, help="append a results section to this markdown file")


def _checked(benchmark, argv):
    """``benchmark(args, argv)`` once its output files are known to be writable (``--out``, ``--json``)."""
    def work(args):
        for option in ("out", "json"):
            if getattr(args, option, None):
                check_output_file(getattr(args, option), f"--{option}")
        return benchmark(args, argv)

    return work


def main(argv=None):
    """Run the command line; returns the results (a list of :class:`Result`, or the FID report)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fid-parity":
        parser = _parser("python -m ganlib.bench fid-parity",
                         description="Train DCGAN on MNIST in fp32 and on the fast path (bf16, channels_last, "
                                     "compile) from the same seed; compare their MNIST FIDs.")
        _common(parser)
        parser.add_argument("--steps", type=POSITIVE_INT, default=3000)
        parser.add_argument("--seeds", type=CommaList(item=COUNT), default="0",
                            help="comma-separated seeds; FIDs are averaged")
        parser.add_argument("--n-samples", type=number_type(int, 2, True, "an integer from 2 to 10000 (of MNIST's "
                                                            "10,000 test images)", highest=10_000), default=10_000)
        benchmark, args = fid_parity, parser.parse_args(argv[1:])
    elif argv and argv[0] == "vae":
        parser = _parser("python -m ganlib.bench vae",
                         description="pytorch/examples' VAE loop against ganlib's VAETrainer: "
                                     "images/s and the example's test loss after equal epochs.")
        parser.add_argument("--epochs", type=POSITIVE_INT, default=10)
        parser.add_argument("--batch-size", type=POSITIVE_INT, default=128)
        parser.add_argument("--seed", type=COUNT, default=1, help="default 1, the example's")
        parser.add_argument("--threads", type=COUNT, default=0, help="torch CPU threads (0: torch's default)")
        parser.add_argument("--diagnose", action="store_true",
                            help="also run the example with its loss averaged over the batch, and with its "
                                 "encoder fed [-1, 1]: which of ganlib's differences moves the test loss")
        parser.add_argument("--out", default=None, help="append a results section to this markdown file")
        parser.add_argument("--note", default="", help="a line of text added to the --out section")
        parser.add_argument("--json", default=None, help="also write the numbers to this JSON file "
                                                         "(the VAE chapter reads book/results/vae_bench.json)")
        benchmark, args = vae_benchmark, parser.parse_args(argv[1:])
    else:
        parser = _parser("python -m ganlib.bench", description=BENCH_DOC,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(parser)
        parser.add_argument("--steps", type=POSITIVE_INT, default=100, help="steps per timed window")
        parser.add_argument("--repeats", type=POSITIVE_INT, default=5, help="timed windows; the median is reported")
        parser.add_argument("--warmup", type=COUNT, default=20, help="untimed steps before the first window")
        parser.add_argument("--versions", type=CommaList(VERSIONS), default="a,b,c",
                            help="comma-separated subset of a,b,c")
        parser.add_argument("--workers", type=COUNT, default=2,
                            help="DataLoader workers of the classic loop (0: load in the main process)")
        parser.add_argument("--note", default="", help="a line of text added to the --out section")
        benchmark, args = throughput, parser.parse_args(argv)
    return run(parser.prog, _checked(benchmark, argv), args, args.debug)
