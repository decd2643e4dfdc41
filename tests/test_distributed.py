"""ganlib.distributed and data-parallel training through torchrun (2 CPU processes, gloo)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ganlib import distributed
from ganlib.data import gaussian_ring
from ganlib.models import MLPGenerator
from ganlib.train import GANTrainer

pytestmark = pytest.mark.usefixtures("single_thread")

REPO = Path(__file__).resolve().parents[1]


def test_shards_are_disjoint_equal_and_cover_the_data():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    shards = [distributed.shard(x, y, rank=r, world_size=3) for r in range(3)]
    assert [len(s[0]) for s in shards] == [3, 3, 3]  # 10 // 3 each; one example dropped
    seen = torch.cat([s[1] for s in shards])
    assert len(set(seen.tolist())) == 9
    for sx, sy in shards:  # images and labels stay paired
        assert torch.equal(sx[:, 0].long(), sy)
    with pytest.raises(ValueError, match="rank must be in"):
        distributed.shard(x, rank=3, world_size=3)


def test_single_process_defaults():
    assert not distributed.is_distributed() and distributed.is_main_process()
    assert distributed.rank_seed(7) == 7 and distributed.rank_seed(7, rank=1) != 7
    G = MLPGenerator(2, 2)
    assert distributed.wrap_ddp(G, torch.device("cpu")) is G  # nothing to wrap outside torchrun
    assert distributed.any_rank(True, torch.device("cpu")) is True


def test_sync_bn_on_cpu_names_the_fix():
    with pytest.raises(ValueError, match="Drop --sync-bn"):
        distributed.check_sync_bn(torch.device("cpu"))


# Runs `python -m ganlib train` unchanged, except that each rank also dumps its final weights
# and losses, which the test compares.
LAUNCHER = textwrap.dedent("""
    import os, sys, torch
    import ganlib.train as T
    fit = T.Trainer.fit
    def fit_and_dump(self):
        history = fit(self)
        weights = {f"{k}.{n}": p.detach().cpu() for k, m in self.models.items() for n, p in m.named_parameters()}
        torch.save({"weights": weights, "loss_d": history["loss_d"]},
                   os.path.join(os.environ["GANLIB_TEST_DUMP"], f"rank{self.dist.rank}.pt"))
        return history
    T.Trainer.fit = fit_and_dump
    from ganlib.__main__ import main
    main(sys.argv[1:])
""")


def test_torchrun_two_cpu_processes_then_resume_on_one(tmp_path):
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    out = tmp_path / "run"
    env = {**os.environ, "GANLIB_TEST_DUMP": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(launcher),
           "train", "--dataset", "ring", "--steps", "12", "--batch-size", "32", "--log-every", "4",
           "--device", "cpu", "--no-progress", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("trained to step 12") == 1  # only rank 0 prints

    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # different shards and noise on each rank ...
    assert rank0["loss_d"] != rank1["loss_d"]
    # ... but gradients were averaged, so both ranks end with the same weights
    for name, w in rank0["weights"].items():
        assert torch.equal(w, rank1["weights"][name]), name

    # the checkpoint (written by rank 0) has the single-process format and resumes on one device
    ckpt = out / "checkpoint.safetensors"
    trainer = GANTrainer.from_checkpoint(ckpt, gaussian_ring(), steps=16, progress=False, device="cpu")
    assert trainer.step == 12
    for name, p in trainer.generator.named_parameters():
        assert torch.equal(p.detach(), rank0["weights"][f"generator.{name}"])
    history = trainer.fit()
    assert trainer.step == 16 and history["step"][-1] == 16
    assert not torch.equal(trainer.generator.net[0].weight.detach(), rank0["weights"]["generator.net.0.weight"])


# A learning-rate schedule under torchrun: each rank dumps its final weights and rates.
DECAY_LAUNCHER = textwrap.dedent("""
    import os, torch
    from ganlib import distributed, seed_everything
    from ganlib.data import gaussian_ring
    from ganlib.models import MLPDiscriminator, MLPGenerator
    from ganlib.train import GANConfig, GANTrainer, LinearLRDecay

    distributed.init_distributed("cpu")
    seed_everything(0)
    config = GANConfig(steps=12, batch_size=32, log_every=4, device="cpu", progress=False, lr_g=1e-3, lr_d=2e-3)
    trainer = GANTrainer(MLPGenerator(4, 2, hidden=(16,)), MLPDiscriminator(2, hidden=(16,)), gaussian_ring(),
                         config, callbacks=[LinearLRDecay(total_steps=16)])
    history = trainer.fit()
    weights = {f"{k}.{n}": p.detach() for k, m in trainer.models.items() for n, p in m.named_parameters()}
    torch.save({"weights": weights, "rates": trainer.learning_rates(), "lr_g": history["lr_g"],
                "loss_d": history["loss_d"]},
               os.path.join(os.environ["GANLIB_TEST_DUMP"], f"rank{trainer.dist.rank}.pt"))
    distributed.cleanup()
""")


def test_torchrun_learning_rate_decay_reaches_every_rank(tmp_path):
    launcher = tmp_path / "decay.py"
    launcher.write_text(DECAY_LAUNCHER)
    env = {**os.environ, "GANLIB_TEST_DUMP": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(launcher)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["loss_d"] != rank1["loss_d"]  # the ranks trained on different data ...
    expected = {"lr_g": 1e-3 * (1 - 12 / 16), "lr_d": 2e-3 * (1 - 12 / 16)}
    assert rank0["rates"] == pytest.approx(expected) and rank1["rates"] == rank0["rates"]  # ... at the same rates
    assert rank1["lr_g"] == rank0["lr_g"] and rank0["lr_g"][-1] < rank0["lr_g"][0]  # logged in stairs, equal
    for name, w in rank0["weights"].items():
        assert torch.equal(w, rank1["weights"][name]), name
