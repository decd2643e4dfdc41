"""Choosing the MNIST DCGAN's layout by measurement: the study behind the shipped ``dcgan-mnist``.

Each arm is a set of run spec fields (:data:`ARMS`, see :class:`ganlib.spec.RunSpec`) that changes the layout of
the 28x28 DCGAN and nothing else (the InfoGAN arms add a code and its weight, :data:`ARM_STEERING`); every arm trains for the same number of steps, with the same
loss, optimiser, batch size and EMA, over several seeds. Each run is scored on the book's MNIST
metrics (10,000 samples of the EMA generator against the 10,000 test digits, ganlib's classifier
features) plus what a reader sees: the share of unrecognisable digits (classifier's top
probability under 0.9) and the share of each digit. The command::

    python -m ganlib.chapters.dcgan_recipe ablation --steps 2000 --seeds 0 1 2 --workers 2

writes ``book/results/dcgan_recipe.json`` (with provenance); the practice chapter shows it.

The layouts' first 2,000 steps do not show how a recipe ends. :func:`full_runs` scores finished
full-length runs the same way, from the folders where ``python -m ganlib.pretrained make dcgan-mnist
--folder DIR`` wrote each candidate (the recipe without a code, and with InfoGAN codes of two weights)::

    python -m ganlib.chapters.dcgan_recipe full-runs DIR...

writes ``book/results/dcgan_full_runs.json``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..classifier import classify, load_mnist_classifier
from ..command import COUNT, POSITIVE_INT, UsageError, check_output_file
from ..metrics import mnist_metrics
from ..pretrained import generate, info, load
from ..spec import RunSpec, options
from .parallel import map_jobs
from .results import RESULTS_DIR, command_parser, load_results, provenance, run_command

RECIPE_PATH = RESULTS_DIR / "dcgan_recipe.json"
FULL_RUNS_PATH = RESULTS_DIR / "dcgan_full_runs.json"
FULL_RUNS_COMMAND = "python -m ganlib.chapters.dcgan_recipe full-runs"
COMMAND = "python -m ganlib.chapters.dcgan_recipe ablation"
#: what every arm shares: the shipped recipe's run spec fields and EMA, without the layout, length and seed
COMMON = {"dataset": "mnist", "model": "dcgan", "batch_size": 64}
STEERING = {"ema_decay": 0.999}
#: arm -> its layout (RunSpec fields). G's width is the channels at 14x14 (twice that at 7x7); D's at 14x14.
ARMS: dict[str, dict[str, int]] = {
    "width 32 (before)": {"base_width": 32},
    "width 64 (ganlib's default)": {"base_width": 64},
    "G x4": {"g_width": 128, "d_width": 32},
    "D x2": {"g_width": 32, "d_width": 64},
    # also the TensorFlow DCGAN tutorial's widths: 256 channels at 7x7 in G, D 64 -> 128
    "G x4, D x2": {"g_width": 128, "d_width": 64},
    # Radford et al.'s and InfoGAN's MNIST layout: FC 1024 -> 7x7x128 -> 64 -> 1; D 64 -> 128 -> FC 1024
    "FC layout (Radford/InfoGAN)": {"base_width": 64, "g_fc": 1024, "d_fc": 1024},
    # the same layout at half the widths: a generator of a few MB, at a third of the CPU time
    "FC layout, half width": {"base_width": 32, "g_fc": 512, "d_fc": 512},
    # the half-width generator (the size that ships) against the full-width discriminator (not shipped)
    "FC layout, half-width G, full-width D": {"g_width": 32, "g_fc": 512, "d_width": 64, "d_fc": 1024},
    # the half-width FC layout with InfoGAN's 10-valued categorical code (Chen et al. 2016), at two weights
    "FC layout, half width, code (lambda 0.3)": {"base_width": 32, "g_fc": 512, "d_fc": 512, "code_classes": 10},
    "FC layout, half width, code (lambda 0.1)": {"base_width": 32, "g_fc": 512, "d_fc": 512, "code_classes": 10},
}
#: arm -> the config fields it sets besides :data:`STEERING` (the InfoGAN arms' weight lambda)
ARM_STEERING: dict[str, dict[str, float]] = {
    "FC layout, half width, code (lambda 0.3)": {"info_weight": 0.3},
    "FC layout, half width, code (lambda 0.1)": {"info_weight": 0.1},
}
UNRECOGNISABLE_BELOW = 0.9  # top classifier probability under this: a reader cannot tell the digit


#: the common part as command-line options (recorded in the results file)
COMMON_OPTIONS = options({**COMMON, **STEERING}.items())


def arm_spec(arm: str, seed: int = 0) -> RunSpec:
    """The run spec of one arm at one seed."""
    return RunSpec(**COMMON, **ARMS[arm], seed=seed)


def unrecognisable_share(probabilities: torch.Tensor, below: float = UNRECOGNISABLE_BELOW) -> float:
    """The share of images whose top class probability is under ``below``.

    Args:
        probabilities: the classifier's class probabilities, shape (N, classes), rows summing to 1.
        below: the confidence under which a digit counts as unrecognisable.
    """
    if probabilities.dim() != 2 or len(probabilities) == 0:
        raise ValueError(f"probabilities must have shape (N, classes) with N >= 1; got {tuple(probabilities.shape)}")
    return float((probabilities.max(1).values < below).float().mean())


def score(generator: torch.nn.Module) -> dict:
    """The book's MNIST metrics of a generator, plus the unrecognisable share (10k seeded samples)."""
    images, _ = generate(generator)
    classifier = load_mnist_classifier()
    m = mnist_metrics(images, classifier=classifier)
    _, probs = classify(classifier, images)
    return {"fid": float(m["fid"]), "inception_score": float(m["inception_score"]),
            "precision": float(m["precision"]), "recall": float(m["recall"]),
            "digit_shares": [float(v) for v in m["label_histogram"]],
            "unrecognisable": unrecognisable_share(probs)}


def run_arm(job: tuple[str, int, int]) -> dict:
    """Train one (arm, steps, seed) and score it; the row of the results file."""
    arm, steps, seed = job
    steering = {**STEERING, **ARM_STEERING.get(arm, {})}
    trainer = arm_spec(arm, seed).build_trainer({"steps": steps, **steering, "progress": False, "log_every": 10})
    start = time.process_time()
    history = trainer.fit()
    cpu_seconds = time.process_time() - start
    tail = max(1, len(history["d_real"]) // 10)  # the last 10% of the logged steps
    row = {"arm": arm, "seed": seed, "steps": trainer.step,
           "options": options(ARMS[arm].items()) + options(ARM_STEERING.get(arm, {}).items()),
           "g_parameters": sum(p.numel() for p in trainer.generator.parameters()),
           "d_parameters": sum(p.numel() for p in trainer.discriminator.parameters()),
           "cpu_s_per_1000_steps": round(1000 * cpu_seconds / trainer.step, 1),
           "d_real_end": sum(history["d_real"][-tail:]) / tail, "d_fake_end": sum(history["d_fake"][-tail:]) / tail,
           "ema": score(trainer.sampling_generator(ema=True)), "raw": score(trainer.generator)}
    print(json.dumps({k: row[k] for k in ("arm", "seed", "cpu_s_per_1000_steps")}
                     | {"fid_ema": row["ema"]["fid"], "fid_raw": row["raw"]["fid"]}), flush=True)
    return row


def info_weight_of(train_command: str) -> float | None:
    """The InfoGAN weight a recorded train command sets (``--info-weight``), None without a code."""
    words = train_command.split()
    if "--code-classes" not in words:
        return None
    return float(words[words.index("--info-weight") + 1]) if "--info-weight" in words else 1.0


def full_runs(folders: list[Path], name: str = "dcgan-mnist") -> dict:
    """Score the finished runs that ``pretrained make NAME --folder DIR`` wrote to each folder.

    Each row: the run's train command, steps, wall time and sizes from its record; its shipped
    (EMA) generator scored by :func:`score` (the record's metrics plus the unrecognisable share,
    on the same 10,000 seeded samples); the raw generator's recorded metrics; the FID over training.
    """
    start = time.perf_counter()
    rows = []
    for folder in folders:
        record = info(name, folder)
        rows.append({"info_weight": info_weight_of(record["train_command"]),
                     **{k: record[k] for k in ("train_command", "date", "steps", "wall_time_s", "parameters",
                                               "discriminator_parameters", "versions")},
                     "ema": score(load(name, folder)), "raw": record["raw_generator_metrics"],
                     "fid_over_training": record["fid_over_training"]})
        print(json.dumps({"info_weight": rows[-1]["info_weight"], **rows[-1]["ema"]}), flush=True)
    command = f"{FULL_RUNS_COMMAND} " + " ".join(str(f) for f in folders)
    return {**provenance(command, start), "name": name, "rows": rows,
            "eval": "10,000 samples of the shipped (EMA) generator (seed 2024) against the 10,000 MNIST test digits, "
                    f"ganlib classifier features; unrecognisable: top probability < {UNRECOGNISABLE_BELOW}"}


def load_full_runs(path: Path = FULL_RUNS_PATH) -> dict:
    """The committed full-length runs (an error naming the command if they are missing)."""
    return load_results(path, f"{FULL_RUNS_COMMAND} DIR...")


def summarise(rows: list[dict]) -> dict:
    """Per arm: the mean and standard deviation over seeds of each scalar of the rows.

    The EMA generator's metrics keep their names (``fid``, ``precision``, ...); the raw generator's
    get ``_raw`` appended (``fid_raw``, ...).
    """
    out = {}
    for arm in dict.fromkeys(r["arm"] for r in rows):
        runs = [r for r in rows if r["arm"] == arm]
        values = {}
        for kind, suffix in (("ema", ""), ("raw", "_raw")):
            for key in ("fid", "inception_score", "precision", "recall", "unrecognisable"):
                values[key + suffix] = [r[kind][key] for r in runs]
            values["lowest_digit_share" + suffix] = [min(r[kind]["digit_shares"]) for r in runs]
            values["highest_digit_share" + suffix] = [max(r[kind]["digit_shares"]) for r in runs]
        values.update({key: [r[key] for r in runs] for key in ("cpu_s_per_1000_steps", "d_real_end", "d_fake_end")})
        summary = {}
        for key, v in values.items():
            mean = sum(v) / len(v)
            summary[key] = {"mean": mean, "std": (sum((x - mean) ** 2 for x in v) / max(1, len(v) - 1)) ** 0.5}
        out[arm] = {"seeds": [r["seed"] for r in runs], "g_parameters": runs[0]["g_parameters"],
                    "d_parameters": runs[0]["d_parameters"], **summary}
    return out


def ablation(steps: int, seeds: list[int], arms: list[str], workers: int = 1) -> dict:
    """Every (arm, seed) run at ``steps`` steps, in parallel processes of one thread each."""
    start = time.perf_counter()
    jobs = [(arm, steps, seed) for seed in seeds for arm in arms]  # seed-major: every arm's first seed comes first
    rows = list(map_jobs(run_arm, jobs, workers=workers, threads=1))
    command = f"{COMMAND} --steps {steps} --seeds {' '.join(map(str, seeds))} --workers {workers}"
    if list(arms) != list(ARMS):
        command += " --arms " + " ".join(f"'{a}'" for a in arms)
    return {**provenance(command, start), "steps": steps, "common_options": COMMON_OPTIONS,
            "eval": "10,000 EMA samples (seed 2024) against the 10,000 MNIST test digits, ganlib classifier features; "
                    f"unrecognisable: top probability < {UNRECOGNISABLE_BELOW}",
            "rows": rows, "summary": summarise(rows)}


def combine(earlier: dict, later: dict) -> dict:
    """Two results files of the same study (same steps and common options) as one: the later file's
    rows replace the earlier's for the same (arm, seed); the commands of both are recorded."""
    if (earlier["steps"], earlier["common_options"]) != (later["steps"], later["common_options"]):
        raise ValueError(f"cannot combine runs of {earlier['steps']} and {later['steps']} steps (or other common "
                         "options); write them to separate files with --out")
    done = {(r["arm"], r["seed"]) for r in later["rows"]}
    rows = [r for r in earlier["rows"] if (r["arm"], r["seed"]) not in done] + later["rows"]
    rows.sort(key=lambda r: (list(ARMS).index(r["arm"]) if r["arm"] in ARMS else len(ARMS), r["seed"]))
    commands = [c for c in earlier.get("commands", [earlier["command"]]) if c != later["command"]] + [later["command"]]
    return {**later, "commands": commands, "wall_time_s": round(earlier["wall_time_s"] + later["wall_time_s"], 1),
            "rows": rows, "summary": summarise(rows)}


def load_recipe(path: Path = RECIPE_PATH) -> dict:
    """The committed ablation results (an error naming the command if they are missing)."""
    return load_results(path, f"{COMMAND} --steps 2000 --seeds 0 1 2 --workers 2")


def _check_earlier(out: Path, steps: int) -> None:
    """Refuse now, not after the training, a non-empty ``out`` whose rows a run of ``steps`` steps
    cannot join (:func:`combine`): not this study's results, or other steps or common options."""
    if not (out.is_file() and out.stat().st_size):
        return
    try:
        earlier = json.loads(out.read_text())
        same = (earlier["steps"], earlier["common_options"]) == (steps, COMMON_OPTIONS)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"--out {out} holds no results of this study ({type(err).__name__}: {err}); "
                         "choose another file") from None
    if not same:
        raise UsageError(f"--out {out} holds runs of {earlier['steps']} steps (or other common options), which "
                         f"runs of --steps {steps} cannot join; choose another file")


def main(argv=None) -> None:
    """``python -m ganlib.chapters.dcgan_recipe ablation``: run the study, combine with earlier rows, write."""
    parser, sub = command_parser("python -m ganlib.chapters.dcgan_recipe")
    a = sub.add_parser("ablation", help="train every layout arm over seeds (writes book/results/dcgan_recipe.json)")
    a.add_argument("--steps", type=POSITIVE_INT, default=2000)
    a.add_argument("--seeds", type=COUNT, nargs="+", default=[0, 1, 2])
    a.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    a.add_argument("--workers", type=POSITIVE_INT, default=1, help="parallel processes, one torch thread each")
    a.add_argument("--out", type=Path, default=RECIPE_PATH)
    f = sub.add_parser("full-runs", help="score finished full-length runs (writes book/results/dcgan_full_runs.json)")
    f.add_argument("folders", type=Path, nargs="+",
                   help="folders where `python -m ganlib.pretrained make dcgan-mnist --folder DIR` wrote a run")
    f.add_argument("--out", type=Path, default=FULL_RUNS_PATH)
    run_command(parser, _study, argv)


def _study(args) -> None:
    if args.command == "full-runs":
        check_output_file(args.out, "--out")
        missing = [str(f) for f in args.folders if not (f / "dcgan-mnist.json").is_file()]
        if missing:
            raise UsageError(f"no dcgan-mnist.json in {', '.join(missing)}: give folders that "
                             "`python -m ganlib.pretrained make dcgan-mnist --folder DIR` wrote")
        torch.set_num_threads(1)
        args.out.write_text(json.dumps(full_runs(args.folders), indent=1) + "\n")
        print(f"wrote {args.out}")
    else:
        _ablation(args)


def _ablation(args) -> None:
    for option, values in (("--seeds", args.seeds), ("--arms", args.arms)):
        if len(set(values)) < len(values):
            raise UsageError(f"{option} {' '.join(map(str, values))}: give each one once")
    check_output_file(args.out, "--out")
    _check_earlier(args.out, args.steps)
    torch.set_num_threads(1)
    result = ablation(args.steps, args.seeds, args.arms, args.workers)
    if args.out.exists() and args.out.stat().st_size:  # rows of other arms or seeds (read now: another run may have written)
        result = combine(json.loads(args.out.read_text()), result)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
