"""ganlib.train: a GAN learns a 1D Gaussian, a VAE's test loss falls, resumed runs are bitwise equal,
non-finite losses stop training without harming the last checkpoint, bad inputs name the fix."""
import pytest
import torch

from ganlib import seed_everything
from ganlib.__main__ import build_parser, build_trainer
from ganlib.checkpoint import load_checkpoint
from ganlib.data import DeviceLoader, Gaussian1D, gaussian_ring, load_digits
from ganlib.models import VAE, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from ganlib.train import EMA, GANConfig, GANTrainer, NonFiniteLossError, SampleSnapshots, VAEConfig, VAETrainer

pytestmark = pytest.mark.usefixtures("single_thread")


def test_gan_learns_gaussian1d_quick_profile(tmp_path, monkeypatch):
    # the CLI's quick-profile preset for N(4, 1.25^2); checked over seeds 0-7 when it was tuned
    monkeypatch.setenv("GANLIB_PROFILE", "quick")
    args = build_parser().parse_args(["train", "--dataset", "gaussian1d", "--out", str(tmp_path), "--no-progress",
                                      "--device", "cpu"])
    trainer = build_trainer(args)
    trainer.config.checkpoint_path = None  # nothing to write here
    history = trainer.fit()
    x = trainer.sample(20_000)
    target = Gaussian1D()
    assert abs(x.mean().item() - target.mean) < 0.1 * target.mean
    assert abs(x.std().item() - target.std) < 0.1 * target.std
    assert len(history["loss_d"]) == trainer.config.steps
    # at the equilibrium D cannot tell: D(x) ~ D(G(z)) ~ 1/2
    assert abs(history["d_real"][-1] - 0.5) < 0.1 and abs(history["d_fake"][-1] - 0.5) < 0.1


def test_vae_test_negative_elbo_falls():
    seed_everything(0)
    train, test = load_digits("train")[0], load_digits("test")[0]
    vae = VAE((1, 8, 8), latent_dim=8, hidden=(128,))
    trainer = VAETrainer(vae, train, VAEConfig(steps=300, batch_size=64, device="cpu", progress=False, log_every=100))
    before = trainer.evaluate(test)
    history = trainer.fit()
    after = trainer.evaluate(test)
    assert after < before - 5  # nats per image; it drops by tens of nats here
    assert history["loss"][-1] < history["loss"][0]
    assert sorted(history) == ["kl", "loss", "lr", "rec", "step"]
    assert history["lr"] == [1e-3] * 300  # the rate is logged with the losses


# ----------------------------------------------------------------------------- exact resume


def _toy_gan(tmp_path, steps):
    seed_everything(1)
    G = MLPGenerator(4, 2, hidden=(16,))
    D = MLPDiscriminator(2, hidden=(16,))
    config = GANConfig(steps=steps, batch_size=32, d_steps=2, gp_weight=1.0, ema_decay=0.9, loss="wasserstein",
                       device="cpu", progress=False, log_every=3, checkpoint_path=str(tmp_path / "toy.safetensors"))
    return GANTrainer(G, D, gaussian_ring(), config)


def _image_gan(tmp_path, steps):
    seed_everything(2)
    images, labels = load_digits("train")
    G = DCGANGenerator(latent_dim=8, image_size=8, base_width=8, num_classes=10)
    D = DCGANDiscriminator(image_size=8, base_width=8, num_classes=10, spectral_norm=True)
    loader = DeviceLoader(images, labels, batch_size=256, device="cpu", seed=5)  # 5 batches an epoch
    config = GANConfig(steps=steps, loss="hinge", r1_weight=0.5, ema_decay=0.8, device="cpu", progress=False,
                       log_every=4, checkpoint_path=str(tmp_path / "img.safetensors"))
    return GANTrainer(G, D, loader, config), loader


def _assert_same(a: GANTrainer, b: GANTrainer):
    assert a.step == b.step
    for name in a.models:
        sa, sb = a.models[name].state_dict(), b.models[name].state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{name}.{k} differs"
    for name in a.optimizers:
        oa, ob = a.optimizers[name].state_dict()["state"], b.optimizers[name].state_dict()["state"]
        assert oa.keys() == ob.keys()
        for i in oa:
            for k in oa[i]:
                assert torch.equal(oa[i][k], ob[i][k]), f"optimizer {name} state {i}.{k} differs"
    ea, eb = a.ema.state_dict(), b.ema.state_dict()
    for k in ea:
        assert torch.equal(ea[k], eb[k]), f"ema {k} differs"
    assert a.history == b.history
    assert torch.equal(a.noise_gen.get_state(), b.noise_gen.get_state())
    assert torch.equal(a.data_gen.get_state(), b.data_gen.get_state())


def test_resume_is_bitwise_equal_toy_distribution(tmp_path):
    full = _toy_gan(tmp_path / "full", steps=14)
    full.fit()
    part = _toy_gan(tmp_path / "part", steps=5)
    part.fit()  # writes the checkpoint at step 5
    torch.manual_seed(12345)  # scramble the global RNG: the checkpoint must restore it
    resumed = GANTrainer.from_checkpoint(tmp_path / "part" / "toy.safetensors", gaussian_ring(), steps=14)
    assert resumed.step == 5
    resumed.fit()
    _assert_same(full, resumed)


def test_resume_is_bitwise_equal_device_loader(tmp_path):
    full, _ = _image_gan(tmp_path / "full", steps=13)
    full.fit()
    part, _ = _image_gan(tmp_path / "part", steps=7)  # stops mid-epoch (7 = 5 + 2 batches)
    part.fit()
    resumed, loader = _image_gan(tmp_path / "other", steps=13)  # fresh models, fresh loader at step 0
    resumed.load(tmp_path / "part" / "img.safetensors")
    assert resumed.step == 7 and loader._cursor == 2
    resumed.fit()
    _assert_same(full, resumed)


def test_vae_resume_is_bitwise_equal(tmp_path):
    def make(steps):
        seed_everything(3)
        vae = VAE((1, 8, 8), latent_dim=4, arch="conv", base_width=4, likelihood="gaussian")
        config = VAEConfig(steps=steps, batch_size=100, device="cpu", progress=False, log_every=2,
                           checkpoint_path=str(tmp_path / f"vae{steps}.safetensors"))
        return VAETrainer(vae, load_digits("train")[0], config)

    full, part = make(9), make(4)
    full.fit()
    part.fit()
    resumed = VAETrainer.from_checkpoint(tmp_path / "vae4.safetensors", load_digits("train")[0], steps=9)
    resumed.fit()
    for k, v in full.vae.state_dict().items():
        assert torch.equal(v, resumed.vae.state_dict()[k])
    assert full.history == resumed.history


# ----------------------------------------------------------------------------- failures


class _PoisonedRing:
    """The ring distribution, but every sample from the ``poison_at``-th call on is NaN."""

    def __init__(self, poison_at):
        self.ring, self.calls, self.poison_at = gaussian_ring(), 0, poison_at

    def sample(self, n, generator=None):
        self.calls += 1
        x = self.ring.sample(n, generator)
        return x * float("nan") if self.calls >= self.poison_at else x


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path):
    seed_everything(0)
    path = tmp_path / "run.safetensors"
    config = GANConfig(steps=20, batch_size=16, device="cpu", progress=False, log_every=5, checkpoint_every=5,
                       checkpoint_path=str(path))
    trainer = GANTrainer(MLPGenerator(2, 2, hidden=(8,)), MLPDiscriminator(2, hidden=(8,)), _PoisonedRing(8), config)
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit()
    assert err.value.step == 8 and err.value.name == "loss_d"
    assert "step 8" in str(err.value) and "loss_d" in str(err.value) and "step 5" in str(err.value)
    state = load_checkpoint(path)
    assert state["step"] == 5
    assert all(torch.isfinite(t).all() for t in state["models"]["generator"].values())
    assert len(state["history"]["loss_d"]) == 5


def test_unknown_loss_in_config_lists_valid_names():
    with pytest.raises(ValueError, match="'minimax', 'nonsaturating', 'lsgan', 'wasserstein', 'hinge'"):
        GANTrainer(MLPGenerator(2, 2), MLPDiscriminator(2), gaussian_ring(), GANConfig(loss="wgan-gp", device="cpu"))


def test_conditional_models_need_labelled_data():
    G = MLPGenerator(2, 4, num_classes=3)
    D = MLPDiscriminator(4, num_classes=3)
    with pytest.raises(ValueError, match=r"\(images, labels\)"):
        GANTrainer(G, D, torch.randn(100, 4), GANConfig(device="cpu"))
    with pytest.raises(TypeError, match="DeviceLoader"):
        GANTrainer(MLPGenerator(2, 4), MLPDiscriminator(4), [[1.0, 2.0]], GANConfig(device="cpu"))


def test_ema_matches_torch_swa_utils():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(0)
    model = MLPGenerator(3, 2, hidden=(8,), batchnorm=True)
    ours, theirs = EMA(model, 0.9), AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    for _ in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(16, 3))  # moves the batch-norm running statistics
        ours.update_parameters(model)
        theirs.update_parameters(model)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys() and int(a["n_averaged"]) == 4
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_gradient_penalty_with_batch_norm_warns():
    D = DCGANDiscriminator(image_size=16, base_width=4)  # batch norm from the second stage on
    with pytest.warns(UserWarning, match="norm='layer'"):
        GANTrainer(DCGANGenerator(4, 16, base_width=4), D, torch.randn(100, 1, 16, 16),
                   GANConfig(gp_weight=10.0, device="cpu"))


def test_snapshots_callbacks_and_stop():
    seed_everything(0)
    seen = []

    def callback(trainer):
        seen.append(trainer.step)
        if trainer.step == 6:
            trainer.should_stop = True

    config = GANConfig(steps=20, batch_size=8, device="cpu", progress=False, log_every=3, n_samples=5)
    snapshots = SampleSnapshots(every=2)
    trainer = GANTrainer(MLPGenerator(2, 2), MLPDiscriminator(2), gaussian_ring(), config,
                         callbacks=[callback, snapshots])
    history = trainer.fit()
    assert seen == [3, 6] and trainer.step == 6  # at logging steps, until the callback stops training
    assert [s for s, _ in snapshots.snapshots] == [2, 4, 6]  # every 2 steps, its own schedule
    assert snapshots.snapshots[0][1].shape == (5, 2) and snapshots.paths == []  # no folder: nothing written
    # fixed noise: the same samples for the same weights
    assert torch.equal(trainer.sample_fixed(), trainer.sample_fixed())
    assert history["step"] == list(range(1, 7))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA to detect host syncs")
def test_no_host_sync_in_cuda_steps():
    seed_everything(0)
    images, labels = load_digits("train")
    G = DCGANGenerator(latent_dim=8, image_size=8, base_width=8, num_classes=10)
    D = DCGANDiscriminator(image_size=8, base_width=8, num_classes=10, norm="layer")
    config = GANConfig(steps=10, batch_size=64, device="cuda", progress=False, log_every=1000, ema_decay=0.9,
                       gp_weight=1.0)
    trainer = GANTrainer(G, D, (images, labels), config)
    trainer.train_step(trainer.draw_inputs())  # warm-up (lazy initialisation may sync)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            trainer.step_log.append(0, trainer.train_step(trainer.draw_inputs()))
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("capability, native", [((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_only_where_the_gpu_computes_it_natively(monkeypatch, capability, native):
    from ganlib.train import speed

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert speed.native_bf16(torch.device("cuda")) is native  # Colab's T4 is 7.5: float32 there
    assert speed.native_bf16(torch.device("cpu")) is False
