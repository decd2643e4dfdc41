"""What defines a training run, in one place: :class:`RunSpec`.

A run is defined by its data (dataset, binarisation), its models (kind, latent size, DCGAN widths
and layout, conditioning, spectral norm), its batch size and its seed: change any of them and it is
another run. Everything else (steps, learning rates, loss, penalties, EMA, logging, checkpoints,
devices and speed flags) *steers* a run, lives on the trainer's config (:mod:`ganlib.train.config`)
and may change when the run resumes.

A :class:`RunSpec` checks itself once, when it is made, and fills what it leaves out from the
dataset's preset (:func:`preset`, which depends on the profile, see :mod:`ganlib.env`). It then
builds the data, the models and the trainer (:meth:`RunSpec.build_trainer`); the checkpoint records
it, and :meth:`RunSpec.recorded` compares the recorded spec with a command's, field by field. It renders
itself as the equivalent command line (:meth:`RunSpec.command`), for provenance::

    spec = RunSpec("mnist", "dcgan", g_fc=512, d_fc=512, base_width=32)
    trainer = spec.build_trainer({"steps": 30_000, "ema_decay": 0.999, "checkpoint_path": "run/checkpoint.safetensors"})
    trainer.fit()
    spec.command()   # 'python -m ganlib train --dataset mnist --model dcgan --batch-size 64 ...'
"""
from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass

from . import data as gdata
from . import models
from .checkpoint import load_trainer_state
from .command import UsageError
from .env import by_profile, seed_everything
from .train import GANConfig, GANTrainer, LinearLRDecay, VAEConfig, VAETrainer

TOY = {"gaussian1d": gdata.Gaussian1D, "ring": gdata.gaussian_ring, "grid": gdata.gaussian_grid,
       "moons": gdata.TwoMoons, "spiral": gdata.Spiral}
IMAGES = ("mnist", "fashion_mnist", "digits")
MODELS = ("mlp", "dcgan", "vae", "conv-vae")
VAE_MODELS = ("vae", "conv-vae")
#: the DCGAN's layout beyond its base width: G's and D's own widths, and their fully connected layers
DCGAN_LAYOUT = ("g_width", "d_width", "g_fc", "d_fc", "code_classes")
#: config fields that only GANs have (loss, rates, penalties, EMA, speed options): a VAE run refuses them
GAN_ONLY = tuple(sorted(GANConfig.field_names() - VAEConfig.field_names()))


class SpecError(UsageError):
    """A run spec that cannot be built; the message names the field and its command-line flag."""


def flag(field: str) -> str:
    """The command-line flag of a spec or config field: ``g_fc`` -> ``--g-fc``."""
    return "--" + field.replace("_", "-")


def preset(dataset: str, model: str) -> dict:
    """Defaults for a dataset/model pair in the active profile: what a spec or command leaves out."""
    if dataset == "gaussian1d":
        # an affine G (hidden=()) can represent N(4, 1.25^2) exactly; lr 1e-2 gets there in ~1.5k steps
        return dict(steps=by_profile(1500, 5000), batch_size=256, lr=1e-2, latent_dim=1, g_hidden=(), d_hidden=(32, 32))
    if dataset in TOY:
        return dict(steps=by_profile(2000, 20000), batch_size=256, lr=1e-3, latent_dim=8, g_hidden=(128, 128),
                    d_hidden=(128, 128))
    if model in VAE_MODELS:
        return dict(steps=by_profile(500, 20000), batch_size=128, lr=1e-3, latent_dim=16)
    if dataset == "digits":
        # measured on CPU: the MLP G collapses to a few digits without batch norm, not with it
        return dict(steps=by_profile(1000, 10000), batch_size=64, lr=2e-4, latent_dim=32, g_hidden=(256, 256),
                    d_hidden=(256, 256), base_width=32)
    # MNIST and Fashion-MNIST (same shape); on CPU a width-32 DCGAN draws digit-like strokes after ~600 steps (about a minute)
    return dict(steps=by_profile(600, 20000), batch_size=by_profile(64, 128), lr=2e-4, latent_dim=100,
                g_hidden=(128, 256, 512, 1024), d_hidden=(512, 256, 128), base_width=by_profile(32, 64))


def load_data(dataset: str):
    """The training data of ``dataset``: a toy distribution, or ``(images, labels)`` tensors."""
    if dataset in TOY:
        return TOY[dataset]()
    if dataset == "digits":
        return gdata.load_digits("train")
    return gdata.load_mnist("train", dataset=dataset)


def options(pairs) -> list[str]:
    """``[("g_fc", 512), ("conditional", True), ("lr", None)]`` -> ``["--g-fc", "512", "--conditional"]``."""
    out = []
    for name, value in pairs:
        if value is not None and value is not False:
            out += [flag(name)] if value is True else [flag(name), str(value)]
    return out


def _whole(value, lowest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lowest


def _check(spec: "RunSpec") -> None:
    """Refuse a spec that cannot be built, naming the field and its flag."""
    def refuse(field: str, why: str):
        raise SpecError(f"{field} ({flag(field)}) {why}")

    if spec.dataset not in IMAGES + tuple(TOY):
        refuse("dataset", f"must be one of {', '.join(IMAGES + tuple(TOY))}; got {spec.dataset!r}")
    if spec.model not in MODELS:
        refuse("model", f"must be one of {', '.join(MODELS)}; got {spec.model!r}")
    for field, lowest in [("batch_size", 1), ("latent_dim", 1), ("base_width", 1), ("g_width", 1),
                          ("d_width", 1), ("g_fc", 0), ("d_fc", 0), ("code_classes", 0), ("seed", 0)]:
        value = getattr(spec, field)
        if value is not None and not _whole(value, lowest):
            refuse(field, f"must be an integer >= {lowest}; got {value!r}")
    for field in ("conditional", "spectral_norm", "binarize"):
        if not isinstance(getattr(spec, field), bool):
            refuse(field, f"must be True or False; got {getattr(spec, field)!r}")
    for field in ("base_width",) + DCGAN_LAYOUT:
        if getattr(spec, field) is not None and spec.model != "dcgan":
            refuse(field, f"sets the DCGAN's layout; model {spec.model!r} does not take it")
    latent_dim = spec.latent_dim or preset(spec.dataset, spec.model)["latent_dim"]
    if spec.code_classes and (spec.conditional or not 2 <= spec.code_classes < latent_dim):
        refuse("code_classes", f"must be 0 (no code) or between 2 and the latent size - 1 ({latent_dim - 1}; "
               f"--latent-dim sets it), in an unconditional run (without --conditional): the code replaces z's "
               f"last entries; got {spec.code_classes!r}")
    if spec.binarize and not spec.is_vae:
        refuse("binarize", f"is a VAE option (binary pixels for a Bernoulli decoder); model {spec.model!r} "
               "is a GAN: leave it out, or use model 'vae' / 'conv-vae'")
    if spec.dataset in TOY and (spec.model != "mlp" or spec.conditional):
        refuse("dataset", f"{spec.dataset!r} is a toy distribution: it needs model 'mlp' (--model mlp), "
               "unconditional; the image models and VAEs are for mnist, fashion_mnist and digits")
    if spec.is_vae and (spec.conditional or spec.spectral_norm):
        refuse("conditional" if spec.conditional else "spectral_norm",
               "is a GAN option; the VAE models take neither --conditional nor --spectral-norm")


def _steering(spec: "RunSpec", fields: dict | None) -> dict:
    """What :meth:`RunSpec.steering` returns."""
    fields = {k: v for k, v in (fields or {}).items() if v is not None}
    defining = sorted(set(fields) & {f.name for f in dataclasses.fields(spec)})
    if defining:
        raise SpecError(f"{', '.join(defining)} define the run: give them to the RunSpec, not as config fields")
    if spec.is_vae:
        bad = [flag(k) for k in GAN_ONLY if fields.get(k)]  # --compile none (False) asks for nothing
        if bad:
            raise SpecError(f"{', '.join(bad)} {'is a GAN option' if len(bad) == 1 else 'are GAN options'}; "
                            "this run trains a VAE (it takes --lr)")
        return {k: v for k, v in fields.items() if k not in GAN_ONLY}
    if "info_weight" in fields and not spec.code_classes:
        raise SpecError("--info-weight weights an InfoGAN code; this run has none: give --code-classes K too, "
                        "or leave --info-weight out")
    lr = fields.pop("lr", None)
    return {**({"lr_g": lr, "lr_d": lr} if lr is not None else {}), **fields}


def _models(spec: "RunSpec", data) -> dict:
    """The models :meth:`RunSpec.build_models` returns."""
    k = 10 if spec.conditional else 0
    if spec.dataset in TOY:
        return {"generator": models.MLPGenerator(spec.latent_dim, data.dim, hidden=spec.preset["g_hidden"]),
                "discriminator": models.MLPDiscriminator(data.dim, hidden=spec.preset["d_hidden"],
                                                         spectral_norm=spec.spectral_norm)}
    shape = tuple(data[0].shape[1:])
    if spec.is_vae:
        return {"vae": models.VAE(shape, latent_dim=spec.latent_dim, arch="conv" if spec.model == "conv-vae" else "mlp")}
    if spec.model == "dcgan":
        return {"generator": models.DCGANGenerator(spec.latent_dim, shape[-1], shape[0], spec.g_width,
                                                   num_classes=k, hidden=spec.g_fc, code_classes=spec.code_classes),
                "discriminator": models.DCGANDiscriminator(shape[-1], shape[0], spec.d_width,
                                                           spectral_norm=spec.spectral_norm, num_classes=k,
                                                           hidden=spec.d_fc, code_classes=spec.code_classes)}
    return {"generator": models.MLPGenerator(spec.latent_dim, shape, hidden=spec.preset["g_hidden"],
                                             out_activation="tanh", batchnorm=True, num_classes=k),
            "discriminator": models.MLPDiscriminator(shape, hidden=spec.preset["d_hidden"],
                                                     activation="leaky_relu", spectral_norm=spec.spectral_norm,
                                                     num_classes=k)}


@dataclass
class RunSpec:
    """What defines a training run; ``None`` fields take the dataset's :func:`preset`.

    Args:
        dataset: one of :data:`IMAGES` or the toy distributions in :data:`TOY`.
        model: ``"mlp"``, ``"dcgan"`` (GANs), ``"vae"`` or ``"conv-vae"``.
        batch_size, latent_dim: default from the preset.
        seed: seeds the models' initial weights and every random stream of the trainer.
        base_width: DCGAN only: channels of D's first and G's last stage (doubled at each stage).
        g_width, d_width: DCGAN only: G's and D's own widths (default: ``base_width``).
        g_fc, d_fc: DCGAN only: units of a fully connected layer at G's start and before D's
            logit (default 0: none), as in Radford et al.'s and InfoGAN's MNIST models.
        code_classes: DCGAN only: an InfoGAN categorical code of that many values, chosen by z's
            last entries, and D's head Q that predicts it (default 0: none; Chen et al. 2016).
        conditional: class-conditional G and D (image datasets, GANs).
        spectral_norm: spectral norm in D (GANs).
        binarize: VAEs: fresh binary pixels ~ Bernoulli(grey level) at every step.

    Raises :class:`SpecError`, naming the field and its flag, for anything that cannot be built.
    """

    dataset: str
    model: str = "mlp"
    conditional: bool = False
    spectral_norm: bool = False
    binarize: bool = False
    latent_dim: int | None = None
    base_width: int | None = None
    g_width: int | None = None
    d_width: int | None = None
    g_fc: int | None = None
    d_fc: int | None = None
    code_classes: int | None = None
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self):
        _check(self)
        # what the command line must state to make this run again: the fields given, not filled in below
        self.stated = tuple(f.name for f in dataclasses.fields(self)
                            if getattr(self, f.name) is not None and getattr(self, f.name) is not False)
        self.preset = preset(self.dataset, self.model)  # once: the profile is read when the spec is made
        self.batch_size = self.batch_size or self.preset["batch_size"]
        self.latent_dim = self.latent_dim or self.preset["latent_dim"]
        if self.model == "dcgan":
            if not (self.g_width and self.d_width):  # the base width only fills the width not given
                self.base_width = self.base_width or self.preset["base_width"]
            self.g_width, self.d_width = self.g_width or self.base_width, self.d_width or self.base_width
            self.g_fc, self.d_fc, self.code_classes = self.g_fc or 0, self.d_fc or 0, self.code_classes or 0

    @property
    def is_vae(self) -> bool:
        """Whether the run trains a VAE (else a GAN): the one place that decides it."""
        return self.model in VAE_MODELS

    # -- records and command lines
    def record(self) -> dict:
        """The spec's fields, as a checkpoint records them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_record(cls, record: dict) -> "RunSpec":
        """The spec a checkpoint recorded (records of older ganlib lack the fields that then took
        their defaults, e.g. the DCGAN layout)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})

    @classmethod
    def recorded(cls, state: dict, given: dict | None = None, source="the checkpoint") -> "RunSpec":
        """The spec of the run a trainer checkpoint's ``state`` holds, checked against ``given``.

        ``given`` (field -> value, ``None``: not stated) is what a command says of the run; a value
        that differs from the checkpoint's would make another run, and is refused (:class:`SpecError`).
        """
        if not (state.get("run") or {}).get("dataset"):
            raise SpecError(f"{source} records no run spec (an older ganlib wrote it); continue it from Python "
                            f"with {state.get('kind', 'GANTrainer')}.from_checkpoint(path, data)")
        spec = cls.from_record(state["run"])
        given = {k: v for k, v in (given or {}).items() if v is not None}
        if "model" in given and (given["model"] in VAE_MODELS) != spec.is_vae:
            raise SpecError(f"--resume: {source} holds a {'VAE' if spec.is_vae else 'GAN'} run (model "
                            f"{spec.model!r}); this command asks for --model {given['model']}. Resume with "
                            f"--model {spec.model}, or start a new run in another --out")
        changed = spec.differences(given)
        if changed:
            raise SpecError(f"--resume cannot change what defines the run: {'; '.join(changed)}. Leave these out "
                            "to continue the run, or start a new run in another --out")
        return spec

    def differences(self, given: dict) -> list[str]:
        """What ``given`` (field -> value, ``None``: not given) changes in this spec, one
        ``"--flag value (the checkpoint has value)"`` per field."""
        return [f"{flag(k)} {v!r} (the checkpoint has {getattr(self, k)!r})" for k, v in given.items()
                if v is not None and v != getattr(self, k)]

    def argv(self, steering: dict | None = None) -> list[str]:
        """The ``python -m ganlib train`` options that make this run: the fields it was given (the
        rest follow from them), with ``steering``'s options (config fields, and ``lr_decay``)
        before the seed."""
        fields = [(name, getattr(self, name)) for name in self.stated if name != "seed"]
        return options(fields) + options((steering or {}).items()) + options([("seed", self.seed)])

    def command(self, steering: dict | None = None) -> str:
        """The equivalent command line (for provenance); ``steering`` as in :meth:`argv`."""
        return "python -m ganlib train " + " ".join(shlex.quote(a) for a in self.argv(steering))

    # -- what it builds
    def load_data(self):
        """The training data (a toy distribution, or ``(images, labels)``)."""
        return load_data(self.dataset)

    def build_models(self, data) -> dict:
        """The freshly initialised models: ``{"generator", "discriminator"}`` or ``{"vae"}``.

        Seed first (:func:`~ganlib.env.seed_everything`) for the same weights from the same seed.
        """
        return _models(self, data)

    def steering(self, fields: dict | None = None) -> dict:
        """Config fields for this kind of run: ``lr`` sets both GAN rates (unless ``lr_g``/``lr_d``
        are given); a GAN-only field on a VAE run is refused (:class:`SpecError`)."""
        return _steering(self, fields)

    def config(self, steering: dict | None = None):
        """The trainer's config: the preset's steps and learning rate, then :meth:`steering`'s fields."""
        common = {"steps": self.preset["steps"], **self.steering(steering), "batch_size": self.batch_size,
                  "seed": self.seed}
        if self.is_vae:
            return VAEConfig(**{"lr": self.preset["lr"], **common, "binarize": self.binarize})
        return GANConfig(**{"lr_g": self.preset["lr"], "lr_d": self.preset["lr"], **common})

    def build_trainer(self, steering: dict | None = None, callbacks=(), lr_decay: bool = False, data=None):
        """A new trainer for this run: data, seeded models, config (``steering``: config fields).

        ``lr_decay`` adds :class:`~ganlib.train.LinearLRDecay` to the config's last step.
        ``data`` replaces :meth:`load_data` (tests, or data already in memory).
        """
        config = self.config(steering)  # checked before the data is read
        data = self.load_data() if data is None else data
        seed_everything(self.seed)  # before building the models: same seed, same weights
        built = self.build_models(data)
        if self.is_vae:
            trainer = VAETrainer(built["vae"], data, config, callbacks)
        else:
            trainer = GANTrainer(built["generator"], built["discriminator"], data, config, callbacks)
        trainer.run_spec_fields = self.record()
        return _with_lr_decay(trainer, lr_decay)

    @classmethod
    def resume(cls, path, given: dict | None = None, steering: dict | None = None, callbacks=(),
               lr_decay: bool = False, data=None):
        """The run checkpointed at ``path``, ready to continue: :meth:`recorded` (``given`` checked
        against the checkpoint's spec), then :meth:`resume_trainer`."""
        state = load_trainer_state(path)
        return cls.recorded(state, given, source=path).resume_trainer(state, steering, callbacks, lr_decay,
                                                                       source=path, data=data)

    def resume_trainer(self, state: dict, steering: dict | None = None, callbacks=(), lr_decay: bool = False,
                       source="the checkpoint", data=None):
        """The trainer of this run, restored from its checkpoint's ``state`` (see :meth:`recorded`),
        with ``steering``'s config fields changed; ``lr_decay`` as in :meth:`build_trainer`."""
        cls = VAETrainer if self.is_vae else GANTrainer
        overrides = self.steering(steering)  # checked before the data is read
        trainer = cls.from_state(state, self.load_data() if data is None else data, callbacks, source=source,
                                 **overrides)
        trainer.run_spec_fields = self.record()  # older records gain the fields that took their defaults
        return _with_lr_decay(trainer, lr_decay)


def _with_lr_decay(trainer, lr_decay: bool):
    """Every rate falls linearly to 0 at the run's last step (the first callback, so the step's
    other callbacks see the new rate)."""
    if lr_decay:
        trainer.callbacks.insert(0, LinearLRDecay(trainer.config.steps))
    return trainer
