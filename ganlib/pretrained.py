"""Pretrained MNIST generators and VAEs that ship with ganlib, and the command that makes them.

Load one (offline; its SHA-256 is checked first)::

    G = ganlib.pretrained.load("dcgan-mnist")      # eval mode, on the CPU
    info = ganlib.pretrained.info("dcgan-mnist")   # provenance and metrics (a dict)
    vae = ganlib.pretrained.load("vae-mnist")      # the whole VAE: encoder, decoder, ganlib.models.VAE

Each model is two files in ``ganlib/weights/``: ``NAME.safetensors`` (the generator's weights,
the EMA weights where the run kept them, or a VAE's; stored in float16, with its ``.spec`` in
the metadata) and ``NAME.json``
(the file's SHA-256, the command, date, device, versions, steps, wall time and its MNIST metrics).
Both are written by one command, which trains the recipe with ``python -m ganlib train``'s own
code, re-estimates the EMA generator's batch-norm statistics, measures it, and writes the files::

    python -m ganlib.pretrained make dcgan-mnist     # or mlp-mnist, cdcgan-mnist, vae-mnist
    python -m ganlib.pretrained seeds dcgan-mnist --seeds 0 1 2   # the recipe's spread over seeds
    python -m ganlib.pretrained check                # recompute every shipped model's metrics

The metrics follow the book's MNIST convention (:func:`ganlib.metrics.mnist_metrics`): 10,000
samples against the 10,000 test images, features of ganlib's MNIST classifier. A VAE's record
adds its test log-likelihood (:mod:`ganlib.likelihood`, k = 5000, binarised test images).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .checkpoint import _umask
from .command import (COUNT, POSITIVE_INT, UsageError, check_output_file, check_output_folder, command_parser,
                      folder_lock, run_command)
from .classifier import classify, load_mnist_classifier
from .data import load_mnist
from .env import RESULTS_DIR, versions
from .likelihood import active_units, binary_test_set, elbo, iwae_log_likelihood
from .metrics import frechet_distance_from_features, inception_score, mnist_metrics
from .models import build_model, image_decoder
from .spec import RunSpec

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MAKE_COMMAND = "python -m ganlib.pretrained make {name}"
EVAL_SAMPLES = 10_000
EVAL_SEED = 2024  # the noise of the recorded metrics (and of their recomputation)

#: name -> the ``python -m ganlib train`` options of its full-profile recipe (without ``--out``).
#: Sized for about an hour of one free CPU core each; the chapter "Practice on MNIST" shows what they reach.
@dataclass(frozen=True)
class Recipe:
    """How a shipped model is trained: its run spec and the few config fields that steer it."""

    spec: RunSpec
    steps: int
    ema_decay: float = 0.0  # GANs: the EMA generator ships when > 0
    lr_decay: bool = False  # every rate falls linearly to 0 at the last step
    info_weight: float | None = None  # InfoGAN's lambda, for a spec with a code (None: the config's default)

    @property
    def config_fields(self) -> dict:
        """The config fields this recipe sets (``None``: left at the config's default)."""
        return {"steps": self.steps, "ema_decay": self.ema_decay or None, "info_weight": self.info_weight}

    @property
    def steering(self) -> dict:
        """The config fields (and ``lr_decay``) this recipe sets, in command-line order."""
        return {**self.config_fields, "lr_decay": self.lr_decay}

    def train_command(self) -> str:
        """The ``python -m ganlib train`` command that trains it (recorded as provenance)."""
        return self.spec.command(self.steering)


RECIPES: dict[str, Recipe] = {
    # the source article's MLP GAN done right: tanh output, batch norm in G, LeakyReLU D, one Adam each
    "mlp-mnist": Recipe(RunSpec("mnist", "mlp", batch_size=64, seed=0), steps=24000, ema_decay=0.999),
    # the layout InfoGAN and Radford et al.'s own MNIST code use (fully connected layers at G's start and D's end),
    # at half their widths: chosen by python -m ganlib.chapters.dcgan_recipe ablation (book/results/dcgan_recipe.json);
    # with InfoGAN's 10-valued code at lambda 0.3, chosen over 0.1 and no code by full 30,000-step runs
    # (python -m ganlib.chapters.dcgan_recipe full-runs, book/results/dcgan_full_runs.json)
    "dcgan-mnist": Recipe(RunSpec("mnist", "dcgan", base_width=32, g_fc=512, d_fc=512, code_classes=10,
                                  batch_size=64, seed=0), steps=30000, ema_decay=0.999, info_weight=0.3),
    "cdcgan-mnist": Recipe(RunSpec("mnist", "dcgan", conditional=True, base_width=32, batch_size=64, seed=0),
                           steps=24000, ema_decay=0.999),
    # the VAE chapter's best VAE: MLP 784-512-256-32, Bernoulli decoder on dynamically binarised MNIST
    # (the data of published likelihoods), 256 epochs with a linear learning-rate decay
    "vae-mnist": Recipe(RunSpec("mnist", "vae", binarize=True, latent_dim=32, batch_size=128, seed=0), steps=120000,
                        lr_decay=True),
}
#: the VAEs' likelihood evaluation: importance samples per test image (Burda et al. 2016's k)
NLL_SAMPLES = 5000
#: how the weights ship: float16 halves the files; every recorded metric is measured on the rounded weights
STORED_DTYPE = torch.float16
STORED_NOTE = "; stored as float16 (metrics measured on the stored weights)"


class PretrainedError(RuntimeError):
    """A shipped model is missing, damaged or unknown; the message says how to regenerate it."""


def names(kind: str | None = None) -> list[str]:
    """The shipped models' names; ``kind="gan"`` or ``"vae"`` keeps that kind only."""
    if kind not in (None, "gan", "vae"):
        raise ValueError(f"kind must be None, 'gan' or 'vae'; got {kind!r}")
    return sorted(n for n in RECIPES if kind is None or RECIPES[n].spec.is_vae == (kind == "vae"))


def _paths(name: str, folder: Path | None = None) -> tuple[Path, Path]:
    if name not in RECIPES:
        raise PretrainedError(f"no pretrained model {name!r}; ganlib ships {', '.join(names())}")
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, as hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def info(name: str, folder: Path | None = None) -> dict:
    """The provenance record of a shipped model: command, date, device, versions, metrics, ..."""
    weights, record = _paths(name, folder)
    if not record.is_file():
        raise PretrainedError(f"the provenance file {record} of {name!r} is missing; restore it from the ganlib "
                              f"package (pip install --force-reinstall, or git checkout {record.name}), or regenerate "
                              f"the model with `{MAKE_COMMAND.format(name=name)}` (about an hour on one CPU core)")
    return json.loads(record.read_text())


def load(name: str, folder: Path | None = None, device=None) -> torch.nn.Module:
    """A shipped generator, in eval mode, after checking the weights file's SHA-256.

    Raises :class:`PretrainedError`, naming the command that regenerates the file, when the
    weights are missing or their hash differs from the one recorded in ``NAME.json``.
    """
    weights, _ = _paths(name, folder)
    record = info(name, folder)
    how = (f"Regenerate it with `{MAKE_COMMAND.format(name=name)}` (full profile; it took "
           f"{record.get('wall_time_s', 0) / 60:.0f} min on {record.get('device', 'the CPU')}), or restore "
           f"the file from the ganlib package (pip install --force-reinstall, or git checkout {weights.name})")
    if not weights.is_file():
        raise PretrainedError(f"the weights of {name!r} are missing ({weights}). {how}")
    actual = file_sha256(weights)
    if actual != record.get("sha256"):
        raise PretrainedError(f"{weights} is corrupt or not the shipped file: its SHA-256 is {actual[:16]}..., "
                              f"{str(record.get('sha256'))[:16]}... was recorded in {name}.json. {how}")
    if record.get("name", name) != name:
        raise PretrainedError(f"{name}.json is the record of {record['name']!r}, not of {name!r}: the files were "
                              f"renamed or copied over each other. {how}")
    try:
        tensors = load_file(str(weights))
        with safe_open(str(weights), "pt") as f:
            metadata = f.metadata() or {}
        spec = json.loads(metadata["spec"])
    except Exception as err:  # a pickle or other file behind a re-recorded hash, or weights without their spec
        raise PretrainedError(f"{weights} is not a ganlib model file (safetensors with the model's spec): "
                              f"{type(err).__name__}: {err}. {how}") from None
    if metadata.get("name", name) != name:
        raise PretrainedError(f"{weights} holds the weights of {metadata['name']!r}, not of {name!r}: the files "
                              f"were renamed or copied over each other. {how}")
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise PretrainedError(f"{weights} has non-finite weights ({bad[0]}): it would generate NaN. {how}")
    model = build_model(spec)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    return model.to(device or "cpu").eval()


# ----------------------------------------------------------------------------- measuring


@torch.no_grad()
def generate(generator: torch.nn.Module, n: int = EVAL_SAMPLES, seed: int = EVAL_SEED,
             batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples (CPU, float32) from seeded noise; a conditional generator gets balanced labels."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.latent_dim, generator=rng)
    draw = image_decoder(generator)  # a VAE samples E[x | z]
    classes = getattr(generator, "num_classes", 0)
    labels = torch.arange(n) % classes if classes else None
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = []
    for i in range(0, n, batch_size):
        kw = {"labels": labels[i:i + batch_size].to(device)} if classes else {}
        out.append(draw(z[i:i + batch_size].to(device), **kw).float().cpu())
    generator.train(was_training)
    return torch.cat(out), labels


def measure(generator: torch.nn.Module, n: int = EVAL_SAMPLES, seed: int = EVAL_SEED,
            full: bool = True) -> dict:
    """MNIST metrics of ``n`` seeded samples: FID, IS, and (``full``) precision, recall, label shares.

    For a conditional generator also ``label_accuracy``: how often the classifier reads the
    asked-for digit.
    """
    images, labels = generate(generator, n, seed)
    classifier = load_mnist_classifier()
    if full:
        # the test set's features once per process; density and coverage are not recorded
        m = mnist_metrics(images, classifier=classifier, reference_features=_test_features(),
                          with_density_coverage=False)
        out = {k: float(m[k]) for k in ("fid", "inception_score", "precision", "recall")}
        out["label_histogram"] = [float(v) for v in m["label_histogram"]]
    else:
        fake_f, fake_p = classify(classifier, images)
        out = {"fid": frechet_distance_from_features(_test_features(), fake_f), "inception_score": inception_score(fake_p)}
    if labels is not None:
        _, probs = classify(classifier, images)
        out["label_accuracy"] = float((probs.argmax(1) == labels).float().mean())
    return out


_TEST_FEATURES: list[torch.Tensor] = []


def _test_features() -> torch.Tensor:
    """The classifier features of the 10k MNIST test images, computed once per process."""
    if not _TEST_FEATURES:
        _TEST_FEATURES.append(classify(load_mnist_classifier(), load_mnist("test")[0])[0])
    return _TEST_FEATURES[0]


class TrackFID:
    """A trainer callback: every ``every`` steps, FID and IS of the raw and the EMA generator.

    With ``path`` the rows are also written there after each measurement, and read back from it
    at the start, so that a resumed run keeps the rows of the steps before it stopped.
    """

    def __init__(self, every: int, n: int = EVAL_SAMPLES, path: Path | None = None):
        self.every, self.n, self.path = every, n, path
        self.rows: list[dict] = json.loads(path.read_text()) if path is not None and path.exists() else []

    def __call__(self, trainer) -> None:
        row = {"step": trainer.step}
        for kind, use_ema in (("raw", False), ("ema", True)):
            if use_ema and getattr(trainer, "ema", None) is None:
                continue
            model = trainer.sampling_generator(use_ema)
            row[kind] = measure(model, self.n, full=False)
        self.rows = [r for r in self.rows if r["step"] < trainer.step] + [row]  # a resumed run redoes later rows
        if self.path is not None:
            self.path.write_text(json.dumps(self.rows))
        print(json.dumps(row), flush=True)


# ----------------------------------------------------------------------------- making


#: how often ``make --run-dir`` saves a checkpoint (steps), so that ``--resume`` loses little
CHECKPOINT_EVERY = 500
CHECKPOINT_NAME = "checkpoint.safetensors"


def _train(recipe: Recipe, out: Path, track_every: int, resume: bool = False, kept: bool = False):
    """Train ``recipe`` as ``python -m ganlib train`` would; returns (trainer, tracker, wall time).

    ``kept``: ``out`` is a run folder that outlives the call: checkpoints every
    :data:`CHECKPOINT_EVERY` steps, the FID rows and the wall time so far are kept there, and
    ``resume`` continues that run (bitwise, on the CPU at the same thread count).
    """
    out.mkdir(parents=True, exist_ok=True)
    tracker = TrackFID(track_every, path=out / "fid_over_training.json" if kept else None)
    clock = out / "wall_time_s.json"
    earlier = json.loads(clock.read_text()) if resume and clock.exists() else 0.0
    steering = {**recipe.config_fields, "progress": False,
                "checkpoint_path": str(out / CHECKPOINT_NAME), "checkpoint_every": CHECKPOINT_EVERY if kept else 0}
    if resume:
        trainer = RunSpec.resume(out / CHECKPOINT_NAME, recipe.spec.record(), steering, [tracker], recipe.lr_decay)
    else:
        trainer = recipe.spec.build_trainer(steering, [tracker], lr_decay=recipe.lr_decay)
    start = time.perf_counter()
    if kept:  # the wall time so far, saved with each checkpoint
        trainer.callbacks.append(_SaveWallTime(clock, earlier, start))
    trainer.fit()
    return trainer, tracker, earlier + time.perf_counter() - start


class _SaveWallTime:
    """A trainer callback that keeps a resumable run's wall time so far in a file, at each checkpoint."""

    def __init__(self, path: Path, earlier: float, start: float):
        self.path, self.earlier, self.start, self.every = path, earlier, start, CHECKPOINT_EVERY

    def __call__(self, trainer) -> None:
        self.path.write_text(json.dumps(round(self.earlier + time.perf_counter() - self.start, 1)))


def _downsample(history: dict, points: int = 300) -> dict:
    """Each history series averaged over ``points`` equal windows (enough for a plot)."""
    steps = history["step"]
    size = max(1, math.ceil(len(steps) / points))
    out = {}
    for key, values in history.items():
        if len(values) != len(steps):
            continue
        chunks = [values[i:i + size] for i in range(0, len(values), size)]
        out[key] = [chunk[-1] if key == "step" else sum(chunk) / len(chunk) for chunk in chunks]
    return out


def make(name: str, folder: Path | None = None, run_dir: Path | None = None, track_every: int | None = None,
         resume: bool = False) -> dict:
    """Train ``name``'s recipe, measure the generator that ships, write NAME.safetensors and NAME.json.

    With ``run_dir`` the run is kept there, with a checkpoint every :data:`CHECKPOINT_EVERY`
    steps; ``resume=True`` continues the run in ``run_dir`` after an interruption.
    """
    _paths(name, folder)  # an unknown name fails before training
    if resume and run_dir is None:
        raise PretrainedError("--resume continues the run kept in --run-dir; give the --run-dir of the interrupted run")
    recipe = RECIPES[name]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(run_dir) if run_dir is not None else Path(tmp)
        trainer, tracker, wall = _train(recipe, run, track_every or max(1, recipe.steps // 6), resume,
                                        kept=run_dir is not None)
    if recipe.spec.is_vae:
        return _make_vae(name, recipe, trainer, tracker, wall, folder)
    generator = as_stored(trainer.sampling_generator(ema=True))  # EMA weights with refreshed BN, or the raw G
    metrics = measure(generator)
    raw_metrics = measure(trainer.generator) if trainer.ema is not None else None
    record = {
        "name": name,
        "command": MAKE_COMMAND.format(name=name),
        "train_command": recipe.train_command(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(trainer.device) + (f" ({torch.cuda.get_device_name(trainer.device)})"
                                         if trainer.device.type == "cuda" else ""),
        "versions": versions(),
        "steps": trainer.step,
        "wall_time_s": round(wall, 1),
        "weights": ("ema" if trainer.ema is not None else "raw") + STORED_NOTE,
        "parameters": sum(p.numel() for p in generator.parameters()),
        "discriminator_parameters": sum(p.numel() for p in trainer.discriminator.parameters()),
        "discriminator_spec": trainer.discriminator.spec,  # D is not shipped; its layout is recorded
        "eval": {"samples": EVAL_SAMPLES, "seed": EVAL_SEED, "reference": "MNIST test (10k)",
                 "features": "ganlib MNIST classifier", "k": 3},
        "metrics": metrics,
        "raw_generator_metrics": raw_metrics,
        "fid_over_training": tracker.rows,
        "history": _downsample(trainer.history),
    }
    return save(name, generator, record, folder, dtype=STORED_DTYPE)


def as_stored(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with its floating-point weights and buffers rounded to :data:`STORED_DTYPE`
    and back: the model exactly as it ships, so that its recorded metrics are the shipped file's."""
    copy = build_model(model.spec)
    copy.load_state_dict({k: v.to(STORED_DTYPE).float() if v.is_floating_point() else v
                          for k, v in model.state_dict().items()})
    return copy.to(next(model.parameters()).device).eval()


def store_half(name: str, folder: Path | None = None) -> dict:
    """Re-store a shipped model in float16 (half the file), re-measuring its metrics on the rounded
    weights; the metrics of the float32 file are kept in the record as ``metrics_float32``."""
    record = info(name, folder)
    if record.get("weights", "").endswith(STORED_NOTE):
        return record
    model = as_stored(load(name, folder))
    record = {**record, "metrics_float32": record["metrics"], "metrics": measure(model),
              "weights": record["weights"] + STORED_NOTE,
              "stored_float16": {"command": f"python -m ganlib.pretrained half {name}",
                                 "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}}
    return save(name, model, record, folder, dtype=STORED_DTYPE)


def _make_vae(name, recipe, trainer, tracker, wall, folder) -> dict:
    """A VAE recipe's files: the whole VAE (encoder too), stored in float16, measured as stored."""
    vae = as_stored(trainer.vae)
    test = binary_test_set(load_mnist("test")[0])
    start = time.perf_counter()
    nll = -iwae_log_likelihood(vae, test, NLL_SAMPLES, torch.Generator().manual_seed(EVAL_SEED))
    nll_time = time.perf_counter() - start
    terms = elbo(vae, test, torch.Generator().manual_seed(EVAL_SEED))
    activity = active_units(vae, test)
    record = {
        "name": name, "command": MAKE_COMMAND.format(name=name),
        "train_command": recipe.train_command(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(trainer.device), "versions": versions(), "steps": trainer.step,
        "epochs": round(trainer.step * trainer.config.batch_size / 60_000, 1),
        "wall_time_s": round(wall, 1), "weights": "raw" + STORED_NOTE,
        "parameters": sum(p.numel() for p in vae.parameters()),
        "eval": {"samples": EVAL_SAMPLES, "seed": EVAL_SEED, "reference": "MNIST test (10k)",
                 "features": "ganlib MNIST classifier", "k": 3,
                 "likelihood_data": "the 10k MNIST test images, binarised once (ganlib.likelihood.binary_test_set)"},
        "metrics": measure(vae),
        "likelihood": {"nll_iwae": float(nll.mean()), "k": NLL_SAMPLES, "nll_iwae_std_error":
                       float(nll.std() / len(nll) ** 0.5), "negative_elbo": float(-terms["elbo"].mean()),
                       "rec": float(terms["rec"].mean()), "kl": float(terms["kl"].mean()),
                       "active_units": int((activity > 0.01).sum()), "latent_dim": vae.latent_dim,
                       "wall_time_s": round(nll_time, 1)},
        "fid_over_training": tracker.rows,
        "history": _downsample(trainer.history),
    }
    return save(name, vae, record, folder, dtype=STORED_DTYPE)


def save(name: str, generator: torch.nn.Module, record: dict, folder: Path | None = None,
         dtype: torch.dtype | None = None) -> dict:
    """Write a generator as NAME.safetensors (atomically; refused if not finite) and ``record``,
    with the file's SHA-256 added, as NAME.json. Returns the record. ``dtype`` (e.g. float16)
    stores the floating-point tensors at that precision; :func:`load` returns float32."""
    weights, record_path = _paths(name, folder)
    state = {k: v.detach().cpu().to(dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
             for k, v in generator.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise PretrainedError(f"{name}: the generator has non-finite weights ({bad[0]}); nothing written")
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp_weights = weights.with_suffix(".safetensors.tmp")
    save_file(state, str(tmp_weights), metadata={"spec": json.dumps(generator.spec), "name": name})
    os.chmod(tmp_weights, 0o666 & ~_umask())  # safetensors creates 0600 files; package data must be readable
    record = {**record, "sha256": file_sha256(tmp_weights)}
    tmp_record = record_path.with_suffix(".json.tmp")
    tmp_record.write_text(json.dumps(record, indent=1) + "\n")
    tmp_weights.replace(weights)
    tmp_record.replace(record_path)
    return record


def seeds(name: str, seed_list: list[int], out: Path) -> dict:
    """The recipe's metrics over several seeds (each run's, their mean and std), written to ``out``.

    The recipe's own seed is not retrained when the shipped model's record is of this recipe:
    its metrics are that record's (a CPU run is deterministic at a given thread count). Rows
    already in ``out`` for other seeds of the same recipe are kept, so seeds can be trained by
    separate processes (``--seeds 1`` and ``--seeds 2`` at once) into one file.
    """
    recipe = RECIPES[name]
    train_command = recipe.train_command()
    command = f"python -m ganlib.pretrained seeds {name} --seeds " + " ".join(map(str, seed_list))
    own_seed = recipe.spec.seed
    rows = []
    for seed in seed_list:
        shipped = None
        if seed == own_seed:
            try:
                shipped = info(name)
            except PretrainedError:
                pass
        if shipped is not None and shipped["train_command"] == train_command:
            row = {"seed": seed, "wall_time_s": shipped["wall_time_s"], "ema": shipped["metrics"],
                   "from": f"the shipped model's record ({name}.json, {MAKE_COMMAND.format(name=name)})"}
            if shipped.get("raw_generator_metrics"):
                row["raw"] = shipped["raw_generator_metrics"]
        else:
            with tempfile.TemporaryDirectory() as tmp:
                trainer, _, wall = _train(dataclasses.replace(recipe, spec=dataclasses.replace(recipe.spec, seed=seed)),
                                          Path(tmp), 10 ** 9)
            row = {"seed": seed, "wall_time_s": round(wall, 1), "ema": measure(trainer.sampling_generator(True)),
                   "from": command}
            if trainer.ema is not None:
                row["raw"] = measure(trainer.generator)
        row["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows.append(row)
        print(json.dumps(row), flush=True)
    if out.exists():  # read now, not at the start: another process may have added its seeds meanwhile
        earlier = json.loads(out.read_text())
        if earlier.get("train_command") == train_command:
            rows = [r for r in earlier["runs"] if r["seed"] not in seed_list] + rows
    rows.sort(key=lambda r: r["seed"])
    summary = {}
    for kind in ("ema", "raw"):
        if all(kind in r for r in rows):
            for key in ("fid", "inception_score", "precision", "recall"):
                values = [r[kind][key] for r in rows]
                mean = sum(values) / len(values)
                std = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
                summary[f"{kind}_{key}"] = {"mean": mean, "std": std}
    result = {"name": name, "command": f"python -m ganlib.pretrained seeds {name} --seeds "
              + " ".join(str(r["seed"]) for r in rows), "commands_run": sorted({r["from"] for r in rows}),
              "train_command": train_command, "date": rows[-1]["date"] if rows else None,
              "versions": versions(), "device": "cpu", "runs": rows, "summary": summary}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def check(name: str, folder: Path | None = None) -> dict:
    """Recompute a shipped model's recorded metrics from its weights: {metric: (recorded, now)}."""
    record = info(name, folder)
    if not isinstance(record.get("metrics"), dict):
        raise PretrainedError(f"{name}.json records no metrics, so there is nothing to check; regenerate it with "
                              f"`{MAKE_COMMAND.format(name=name)}`")
    recorded = record["metrics"]
    now = measure(load(name, folder))
    return {k: (recorded[k], now[k]) for k in recorded if k != "label_histogram"}


def main(argv=None) -> None:
    """``python -m ganlib.pretrained make|seeds|half|check``: options and output folders are checked
    before any training (:mod:`ganlib.command`); errors are one line."""
    parser, sub = command_parser("python -m ganlib.pretrained", __doc__.split("\n\n")[0])
    m = sub.add_parser("make", help="train a recipe and write its shipped files")
    m.add_argument("name", choices=names())
    m.add_argument("--folder", type=Path, help="where to write (default: ganlib/weights)")
    m.add_argument("--run-dir", type=Path, help=f"keep the training run here, with a checkpoint every {CHECKPOINT_EVERY} steps")
    m.add_argument("--resume", action="store_true", help="continue the interrupted run in --run-dir")
    m.add_argument("--threads", type=POSITIVE_INT, default=1, help="torch threads on the CPU (default 1: fastest for small models)")
    s = sub.add_parser("seeds", help="train a recipe with several seeds; write the metrics' mean and std")
    s.add_argument("name", choices=names())
    s.add_argument("--seeds", type=COUNT, nargs="+", default=[0, 1, 2])
    s.add_argument("--out", type=Path, help="default: book/results/NAME_seeds.json")
    s.add_argument("--threads", type=POSITIVE_INT, default=1)
    h = sub.add_parser("half", help="re-store a shipped float32 model in float16, re-measuring its metrics")
    h.add_argument("names", nargs="+", choices=names())
    c = sub.add_parser("check", help="recompute the shipped models' metrics")
    c.add_argument("names", nargs="*", help=f"default: all ({', '.join(names())})")
    run_command(parser, _make_or_check, argv)


def _make_or_check(args) -> None:
    if args.command == "make":
        check_output_folder(args.folder or WEIGHTS_DIR, "--folder")
        if args.resume and args.run_dir is None:
            raise UsageError("--resume continues the run kept in --run-dir; give the --run-dir of the interrupted run")
        if args.run_dir is not None:
            check_output_folder(args.run_dir, "--run-dir")
        torch.set_num_threads(args.threads)
        with folder_lock(args.run_dir, "--run-dir") if args.run_dir is not None else contextlib.nullcontext():
            record = make(args.name, args.folder, args.run_dir, resume=args.resume)
        print(json.dumps({k: record[k] for k in ("name", "steps", "wall_time_s", "metrics", "sha256")}, indent=1))
    elif args.command == "half":
        torch.set_num_threads(1)
        for name in args.names:
            record = store_half(name)
            print(name, json.dumps({k: record["metrics"][k] for k in ("fid", "inception_score")}))
    elif args.command == "seeds":
        out = check_output_file(args.out or RESULTS_DIR / f"{args.name}_seeds.json")
        torch.set_num_threads(args.threads)
        print(json.dumps(seeds(args.name, args.seeds, out)["summary"], indent=1))
    else:
        unknown = [name for name in args.names if name not in names()]
        if unknown:
            raise UsageError(f"no shipped model {unknown[0]!r}; ganlib ships {', '.join(names())}")
        for name in args.names or names():
            for key, (was, now) in check(name).items():
                print(f"{name:14s} {key:16s} recorded {was:9.4f}  now {now:9.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
