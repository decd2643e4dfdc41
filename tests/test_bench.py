"""The fast-path options of the trainer, and `python -m ganlib.bench` on the CPU (no speed claims)."""
import pytest
import torch

import ganlib
from ganlib import bench
from ganlib.bench import throughput
from ganlib.data import gaussian_ring
from ganlib.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator, build_model
from ganlib.cuda_graph import CUDAGraphStep
from ganlib.train import GANConfig, GANTrainer, LinearLRDecay, compile_mode, set_learning_rate, speed

pytestmark = pytest.mark.usefixtures("single_thread")


def _ring_trainer(**overrides):
    ganlib.seed_everything(0)
    cfg = dict(steps=6, batch_size=32, device="cpu", progress=False, log_every=3, loss="wasserstein",
               gp_weight=1.0)
    return GANTrainer(MLPGenerator(4, 2, hidden=(16,)), MLPDiscriminator(2, hidden=(16,)), gaussian_ring(),
                      GANConfig(**{**cfg, **overrides}))


def test_generator_step_computes_no_discriminator_weight_gradients():
    trainer = _ring_trainer()
    trainer.train_step(trainer.draw_inputs())
    trainer.discriminator.zero_grad(set_to_none=True)
    trainer.g_step(trainer.noise(8), None)
    assert all(p.grad is None for p in trainer.discriminator.parameters())  # frozen during G's update ...
    assert all(p.requires_grad for p in trainer.discriminator.parameters())  # ... and unfrozen after it
    assert all(p.grad is not None for p in trainer.generator.parameters())


def test_compiled_training_matches_eager_and_keeps_penalty_eager(monkeypatch):
    # the aot_eager backend runs Dynamo and AOTAutograd (the parts that could break the training
    # step or the double-backward penalty) without compiling C++ kernels, which takes a minute on CI
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: compile_(model, backend="aot_eager"))
    eager = _ring_trainer().fit()
    trainer = _ring_trainer(compile="default")
    assert hasattr(trainer.train_discriminator, "_orig_mod")  # the steps really call a compiled module
    compiled = trainer.fit()
    for key in ("loss_d", "loss_g", "penalty"):
        torch.testing.assert_close(torch.tensor(compiled[key]), torch.tensor(eager[key]), rtol=1e-4, atol=1e-5)


def test_compile_mode_names_the_valid_modes():
    assert compile_mode(False) is None and compile_mode(True) == "default"
    with pytest.raises(ValueError, match="'reduce-overhead'"):
        compile_mode("fast")


def test_channels_last_trains_and_checkpoints_in_the_plain_format(tmp_path):
    ganlib.seed_everything(0)
    G, D = DCGANGenerator(8, 16, base_width=4), DCGANDiscriminator(16, base_width=4)
    cfg = GANConfig(steps=2, batch_size=16, device="cpu", progress=False, channels_last=True,
                    checkpoint_path=str(tmp_path / "ckpt.safetensors"))
    trainer = GANTrainer(G, D, torch.rand(64, 1, 16, 16) * 2 - 1, cfg)
    conv = trainer.discriminator.features[2].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    trainer.fit()
    resumed = GANTrainer.from_checkpoint(tmp_path / "ckpt.safetensors", torch.rand(64, 1, 16, 16), channels_last=False)
    for a, b in zip(resumed.discriminator.parameters(), trainer.discriminator.parameters()):
        assert torch.equal(a, b)
    plain = build_model(D.spec)  # a plain, contiguous model loads the weights as well
    plain.load_state_dict(trainer.discriminator.state_dict())


def test_bench_prints_every_field_and_writes_results(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    argv = ["--device", "cpu", "--batch-size", "8", "--steps", "1", "--repeats", "1", "--warmup", "1",
            "--workers", "1", "--compile", "none", "--out", str(out)]
    results = bench.main(argv)
    printed = capsys.readouterr().out
    for field in ("images/s", "b/a =", "c/a =", "peak device memory", "FLOPs / image", "fraction of fp32 matmul rate",
                  "measured matmul rate", "data: "):
        assert field in printed, field
    assert [r.version for r in results] == ["a", "b", "c"]
    assert all(r.images_per_s > 0 and r.flops_per_image > 0 for r in results)
    text = out.read_text()
    for field in ("date:", "command: `python -m ganlib.bench --device cpu", "device: cpu", f"torch {torch.__version__}",
                  "| (a) classic loop |", "| (c) ganlib fast |"):
        assert field in text, field


def test_flop_count_of_one_training_step():
    # G forward twice (D's fakes, then G's update), D forward three times, backward through both
    # (without D's weight gradients in G's update): about 6 times one G + D forward
    G, D = DCGANGenerator(100, 28), DCGANDiscriminator(28)
    fwd = bench.flops_per_image(lambda: D(G(torch.randn(4, 100))), 4)
    trainer = bench.ganlib_trainer("b", torch.rand(16, 1, 28, 28), 4, "cpu", None)
    inputs = trainer.draw_inputs()
    step = bench.flops_per_image(lambda: trainer.train_step(inputs), 4)
    assert 3 * fwd < step < 8 * fwd


def test_fid_parity_runs_on_cpu(capsys):
    from ganlib.classifier import WEIGHTS_PATH
    from ganlib.data import DatasetNotFoundError, load_mnist

    try:
        load_mnist("test", download=False)
    except DatasetNotFoundError:
        pytest.skip("needs MNIST under $GANLIB_DATA")
    if not WEIGHTS_PATH.exists():
        pytest.skip("needs the MNIST classifier weights")
    with pytest.warns(UserWarning, match="not meaningful"):  # 64 samples of 128 features: a plumbing check only
        report = bench.main(["fid-parity", "--device", "cpu", "--steps", "2", "--batch-size", "8",
                             "--n-samples", "64", "--compile", "none"])
    assert report["verdict"] in ("PASS", "FAIL") and report["ratio"] > 0
    assert "ratio fast/fp32" in capsys.readouterr().out


class _EmulatedGraph(CUDAGraphStep):
    """A CPU stand-in for a CUDA graph: "capture" remembers the static input buffers; "replay" reruns
    the step on them and writes its results into the outputs of the first run, as a real replay
    overwrites the graph's output memory. It exercises everything around the graph: the inputs
    copied into fixed buffers before each replay, logs copied out of the outputs, the EMA kept outside."""

    def _warm_up(self, inputs):
        return self.step(inputs)

    def _capture(self, static_inputs):
        self.graph = "emulated"

    def _replay(self):
        outputs = self.step(self.static_inputs)
        if self.outputs is None:
            self.outputs = outputs
        else:
            for key, value in outputs.items():
                self.outputs[key].copy_(value)


def test_cuda_graph_step_reads_fresh_inputs_and_copies_its_logs(monkeypatch):
    monkeypatch.setattr(speed, "CUDAGraphStep", _EmulatedGraph)

    def make():
        ganlib.seed_everything(0)
        cfg = GANConfig(steps=7, batch_size=16, d_steps=2, ema_decay=0.9, device="cpu", progress=False, log_every=7)
        return GANTrainer(DCGANGenerator(8, 16, base_width=4), DCGANDiscriminator(16, base_width=4),
                          torch.rand(64, 1, 16, 16) * 2 - 1, cfg)

    eager, graphed = make(), make()
    graphed.use_cuda_graph = True  # what cuda_graph=True sets on a CUDA device
    assert eager.fit() == graphed.fit()  # 3 warm-up steps, a capture, then replays: the same numbers
    runner = graphed.graphed_step
    assert isinstance(runner, _EmulatedGraph) and runner.graph == "emulated"
    # the replays ran on the static buffers, which hold the last step's inputs, not the first one's
    assert all(s.data_ptr() != x.data_ptr() for s, x in zip(runner.static_inputs.reals, graphed.draw_inputs().reals))
    for a, b in zip(eager.ema.module.parameters(), graphed.ema.module.parameters()):
        assert torch.equal(a, b)


def test_graph_runner_copies_inputs_into_its_buffers_and_checks_shapes():
    seen = []

    def step(inputs):
        seen.append(inputs["x"].data_ptr())
        return {"y": inputs["x"] * 2}

    runner = _EmulatedGraph(step, warmup=1)
    runner({"x": torch.ones(3)})  # eager warm-up, on the caller's tensor
    first = runner({"x": torch.full((3,), 2.0)})  # capture, then replay on a copy of the inputs
    static = runner.static_inputs["x"]
    second = runner({"x": torch.full((3,), 5.0)})
    assert second is first and torch.equal(second["y"], torch.full((3,), 10.0))  # same output memory, new values
    assert torch.equal(static, torch.full((3,), 5.0)) and seen[1] == seen[2] == static.data_ptr()
    with pytest.raises(RuntimeError, match="same input shapes"):
        runner({"x": torch.ones(4)})


def test_cuda_graph_refuses_what_it_cannot_capture():
    with pytest.raises(ValueError, match="penalties"):
        _ring_trainer(cuda_graph=True)  # _ring_trainer uses a gradient penalty
    with pytest.raises(ValueError, match="own CUDA graphs"):
        _ring_trainer(cuda_graph=True, gp_weight=0.0, compile="reduce-overhead")


def test_learning_rate_decay_changes_tensor_rates_in_place_and_checkpoints_as_floats(tmp_path):
    # a CUDA-graphed step reads each lr from a device tensor at every replay, so a schedule must
    # change that tensor in place; checkpoints store it, and a plain run loads it back as a float
    trainer = _ring_trainer(gp_weight=0.0, lr_g=1e-3, lr_d=4e-3, checkpoint_path=str(tmp_path / "c.safetensors"))
    groups = [g for opt in trainer.optimizers.values() for g in opt.param_groups]
    for g in groups:  # what learning_rate() gives every group under cuda_graph=True (on CUDA, where
        g["lr"] = torch.tensor(g["lr"])  # ganlib leaves foreach at torch's default: no CPU foreach loop)
        g["foreach"] = None
    rates = [g["lr"] for g in groups]
    trainer.callbacks.append(LinearLRDecay(total_steps=8))
    trainer.fit()  # callbacks at steps 3 and 6, then a checkpoint at step 6
    assert [g["lr"] for g in groups] == rates  # the same tensor objects ...
    torch.testing.assert_close(torch.stack(rates), torch.tensor([1e-3, 4e-3]) * (1 - 6 / 8))  # ... decayed
    resumed = GANTrainer.from_checkpoint(tmp_path / "c.safetensors", gaussian_ring())
    lrs = [g["lr"] for opt in resumed.optimizers.values() for g in opt.param_groups]
    assert all(type(lr) is float for lr in lrs)
    assert lrs == pytest.approx([1e-3 * 0.25, 4e-3 * 0.25])
    group = {"lr": 0.5}
    set_learning_rate(group, 0.25)
    assert group["lr"] == 0.25


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA to capture a graph")
def test_cuda_graph_step_follows_learning_rate_changes():
    ganlib.seed_everything(0)
    cfg = GANConfig(steps=5, batch_size=16, device="cuda", progress=False, log_every=5, cuda_graph=True)
    trainer = GANTrainer(DCGANGenerator(8, 16, base_width=4), DCGANDiscriminator(16, base_width=4),
                         torch.rand(64, 1, 16, 16) * 2 - 1, cfg)
    trainer.fit()  # 3 eager warm-up steps, then a capture and replays
    assert trainer.graphed_step.graph is not None
    params = lambda: [p.detach().clone() for p in trainer.generator.parameters()]  # noqa: E731

    def set_all(value):
        for opt in trainer.optimizers.values():
            for group in opt.param_groups:
                set_learning_rate(group, value)

    set_all(0.0)
    before = params()
    trainer.config.steps += 2
    trainer.fit()
    assert all(torch.equal(a, b) for a, b in zip(before, params()))  # lr 0 reached the captured step
    set_all(2e-4)
    trainer.config.steps += 2
    trainer.fit()
    assert not all(torch.equal(a, b) for a, b in zip(before, params()))


def test_bench_falls_back_when_a_fast_setting_fails(monkeypatch, capsys):
    # on a GPU, version (c) tries CUDA graph + compile first; a setting that fails to build or warm
    # up must not end the run: the next one is tried, and the table says what happened
    build = bench.ganlib_trainer

    def flaky(version, images, batch_size, device, compile_mode=None, seed=0, cuda_graph=False):
        if cuda_graph == "broken":
            raise RuntimeError("capture failed")
        return build(version, images, batch_size, device, compile_mode, seed, cuda_graph)

    monkeypatch.setattr(throughput, "ganlib_trainer", flaky)
    monkeypatch.setattr(throughput, "fast_settings", lambda *args: [("broken", None), (False, None)])
    results = bench.main(["--device", "cpu", "--versions", "c", "--batch-size", "8", "--steps", "1",
                          "--repeats", "1", "--warmup", "1"])
    assert "fell back after: cuda_graph=broken, compile=None failed (RuntimeError: capture failed)" in results[0].note
    assert "trying the next setting" in capsys.readouterr().out
