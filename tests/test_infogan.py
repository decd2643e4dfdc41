"""The InfoGAN categorical code (Chen et al. 2016): the loss against its closed form, the code that z
chooses, D's head Q, training that makes the code recoverable, resume, and errors that name the fix."""
import math

import pytest
import torch

from ganlib.checkpoint import load_trainer_state
from ganlib.command import UsageError
from ganlib.losses import information_loss
from ganlib.models import DCGANDiscriminator, DCGANGenerator, build_model
from ganlib.spec import RunSpec, SpecError
from ganlib.train import GANConfig, GANTrainer

pytestmark = pytest.mark.usefixtures("single_thread")


def _models(code_classes=4, seed=0):
    torch.manual_seed(seed)
    G = DCGANGenerator(latent_dim=12, image_size=28, base_width=8, hidden=32, code_classes=code_classes)
    D = DCGANDiscriminator(image_size=28, base_width=8, hidden=32, code_classes=code_classes)
    return G, D


def _images(n=256, seed=0):
    """Four kinds of 28x28 image (a bar at one of four heights), easy to tell apart."""
    g = torch.Generator().manual_seed(seed)
    kind = torch.randint(4, (n,), generator=g)
    x = torch.full((n, 1, 28, 28), -1.0)
    for i, k in enumerate(kind.tolist()):
        x[i, 0, 3 + 6 * k: 7 + 6 * k, 4:24] = 1.0
    return x + 0.05 * torch.randn(x.shape, generator=g), kind


def test_information_loss_closed_form():
    # uniform logits: -log(1/K) whatever the code
    assert information_loss(torch.zeros(5, 7), torch.arange(5)).item() == pytest.approx(math.log(7))
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    code = torch.tensor([0, 1])
    expected = -(logits.log_softmax(1)[0, 0] + logits.log_softmax(1)[1, 1]) / 2
    assert information_loss(logits, code).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match=r"shape \(N, K\).*\(N,\)"):
        information_loss(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))


def test_code_is_the_argmax_of_the_last_entries_and_uniform():
    G, _ = _models(code_classes=4)
    z = torch.randn(20_000, 12, generator=torch.Generator().manual_seed(1))
    code = G.code(z)
    assert torch.equal(code, z[:, -4:].argmax(1))
    shares = torch.bincount(code, minlength=4).float() / len(z)
    assert (shares - 0.25).abs().max() < 0.015  # uniform: 4 x 5,000 expected, std about 0.003
    # only the argmax of the code entries reaches the network: scaling them up changes nothing
    G.eval()
    with torch.no_grad():
        scaled = torch.cat([z[:8, :-4], 3 * z[:8, -4:].abs()], 1)
        same_code = torch.where(G.code(scaled) == G.code(z[:8]))[0]
        assert len(same_code) > 0
        assert torch.allclose(G(scaled[same_code]), G(z[same_code]))


def test_latent_with_code_chooses_the_code_and_keeps_the_noise():
    G, _ = _models(code_classes=4)
    z = torch.randn(6, 12)
    wanted = torch.tensor([0, 1, 2, 3, 3, 0])
    chosen = G.latent_with_code(z, wanted)
    assert torch.equal(G.code(chosen), wanted)
    assert torch.equal(chosen[:, :-4], z[:, :-4])
    assert torch.equal(G.code(z), G.code(G.latent_with_code(z, G.code(z))))


def test_discriminator_head_shapes_and_spec_round_trip():
    G, D = _models(code_classes=4)
    x = G(torch.randn(3, 12))
    assert D(x).shape == (3,)
    logits, code_logits = D(x, code_logits=True)
    assert logits.shape == (3,) and code_logits.shape == (3, 4)
    assert torch.equal(logits, D(x))
    assert build_model(G.spec).code_classes == 4 and build_model(D.spec).code_classes == 4
    assert "code_classes" not in DCGANGenerator(latent_dim=12, image_size=28, base_width=8).spec["kwargs"]


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="code_classes must be 0"):
        DCGANGenerator(latent_dim=12, image_size=28, base_width=8, code_classes=12)
    with pytest.raises(ValueError, match="unconditional"):
        DCGANGenerator(latent_dim=12, image_size=28, base_width=8, code_classes=4, num_classes=10)
    with pytest.raises(ValueError, match="build it with code_classes=K"):
        DCGANGenerator(latent_dim=12, image_size=28, base_width=8).code(torch.randn(2, 12))
    with pytest.raises(ValueError, match="no code head; build it with code_classes=K"):
        DCGANDiscriminator(image_size=28, base_width=8)(torch.randn(2, 1, 28, 28), code_logits=True)
    G, _ = _models(code_classes=4)
    D = DCGANDiscriminator(image_size=28, base_width=8, hidden=32, code_classes=3)
    with pytest.raises(ValueError, match="same code_classes"):
        GANTrainer(G, D, _images(), GANConfig(steps=1, progress=False, device="cpu"))
    with pytest.raises(ValueError, match="info_weight must be a finite number >= 0"):
        GANConfig(info_weight=-1)
    with pytest.raises(SpecError, match=r"code_classes \(--code-classes\) sets the DCGAN's layout"):
        RunSpec("mnist", "mlp", code_classes=10)
    with pytest.raises(SpecError, match=r"code_classes \(--code-classes\).*without --conditional"):
        RunSpec("mnist", "dcgan", conditional=True, code_classes=10)
    with pytest.raises(SpecError, match="--info-weight is a GAN option"):
        RunSpec("mnist", "vae").config({"info_weight": 1.0})
    with pytest.raises(SpecError, match="give --code-classes K too"):
        RunSpec("mnist", "dcgan").config({"info_weight": 1.0})
    with pytest.raises(SpecError, match=r"latent size - 1 \(31; --latent-dim sets it\)"):
        RunSpec("digits", "dcgan", code_classes=40)
    assert isinstance(SpecError("x"), UsageError)


def _trainer(tmp, steps, info_weight=1.0, seed=0):
    G, D = _models(code_classes=4, seed=seed)
    cfg = GANConfig(steps=steps, batch_size=32, progress=False, device="cpu", log_every=5, seed=seed,
                    info_weight=info_weight, checkpoint_path=str(tmp / "run.safetensors"), ema_decay=0.9)
    return GANTrainer(G, D, _images(), cfg)


def test_training_makes_the_code_recoverable(tmp_path):
    trainer = _trainer(tmp_path, steps=80)
    history = trainer.fit()
    info = history["loss_info"]
    assert info[0] == pytest.approx(math.log(4), abs=0.3)  # Q starts at chance
    assert sum(info[-3:]) / 3 < 0.5 * math.log(4), info
    # Q recovers the code of fresh samples (not the training batches) well above chance (1/4)
    G, D = trainer.generator, trainer.discriminator
    z = torch.randn(512, 12, generator=torch.Generator().manual_seed(9))
    G.eval(), D.eval()
    with torch.no_grad():
        _, code_logits = D(G(z), code_logits=True)
    assert (code_logits.argmax(1) == G.code(z)).float().mean() > 0.6


def test_each_update_sends_the_information_term_where_eq_5_says(tmp_path):
    """G's update: the term reaches G (through frozen D and Q); D's update: it trains Q and D's layers."""
    grads = {}
    for weight in (0.0, 1.0):
        trainer = _trainer(tmp_path / str(weight), steps=1, info_weight=weight)
        inputs = trainer.draw_inputs()
        trainer.g_step(inputs.g_noise, None)
        grads[weight] = {"G": [p.grad.clone() for p in trainer.generator.parameters()],
                         "Q after G's update": [p.grad for p in trainer.discriminator.code_head.parameters()]}
        trainer.d_step(inputs.reals[0], None, inputs.d_noise[0])
        grads[weight]["Q"] = [p.grad.clone() for p in trainer.discriminator.code_head.parameters()]
    assert all(g is None for g in grads[1.0]["Q after G's update"])  # D (and Q) frozen in G's update
    assert any(not torch.allclose(a, b) for a, b in zip(grads[0.0]["G"], grads[1.0]["G"]))
    assert all(g.abs().sum() == 0 for g in grads[0.0]["Q"]) and all(g.abs().sum() > 0 for g in grads[1.0]["Q"])


def test_latent_with_code_refuses_bad_codes():
    G, _ = _models(code_classes=4)
    with pytest.raises(ValueError, match=r"code must have shape \(3,\) with values in \[0, 4\)"):
        G.latent_with_code(torch.randn(3, 12), torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="build it with code_classes=K"):
        DCGANGenerator(latent_dim=12, image_size=28, base_width=8).latent_with_code(torch.randn(2, 12),
                                                                                    torch.tensor([0, 1]))


def test_info_weight_zero_leaves_the_code_unlearned(tmp_path):
    history = _trainer(tmp_path, steps=40, info_weight=0.0).fit()
    assert min(history["loss_info"]) > 0.8 * math.log(4)  # Q never trained: chance level


def test_resume_with_a_code_is_bitwise_equal(tmp_path):
    full = _trainer(tmp_path / "full", steps=12)
    full.fit()
    part = _trainer(tmp_path / "part", steps=5)
    part.fit()
    assert load_trainer_state(tmp_path / "part" / "run.safetensors")["config"]["info_weight"] == 1.0
    resumed = GANTrainer.from_checkpoint(tmp_path / "part" / "run.safetensors", _images(), steps=12)
    resumed.fit()
    assert full.history == resumed.history
    for name, p in full.discriminator.state_dict().items():
        assert torch.equal(p, resumed.discriminator.state_dict()[name]), name


def test_spec_builds_coded_models_and_states_the_flags():
    spec = RunSpec("mnist", "dcgan", base_width=8, g_fc=32, d_fc=32, code_classes=10)
    built = spec.build_models((torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long)))
    assert built["generator"].code_classes == 10 and built["discriminator"].code_classes == 10
    command = spec.command({"steps": 10, "info_weight": 0.3})
    assert "--code-classes 10" in command and "--info-weight 0.3" in command
    assert RunSpec("mnist", "dcgan").code_classes == 0
