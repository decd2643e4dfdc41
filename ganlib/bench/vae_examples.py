"""``python -m ganlib.bench vae``: pytorch/examples' VAE loop against ganlib's VAETrainer, in one run.

Both train the example's model (784-400-20, ReLU, Bernoulli decoder on grey levels) with batch
128 and Adam at 1e-3 for the same number of epochs, one after the other in the same process:

* **examples**: ``pytorch/examples/vae/main.py`` as it stands (the version with the plain BCE + KL
  loss): the torchvision dataset through a ``DataLoader`` with ``ToTensor``, the loss *summed*
  over the batch, and ``train_loss += loss.item()`` every step;
* **ganlib**: :class:`~ganlib.train.VAETrainer` on :class:`~ganlib.models.VAE` with
  ``hidden=(400,)`` and ``latent_dim=20`` (the same layers), data resident in memory.

Both test losses are computed by the example's own ``test()``: eval mode, one sample of z per
image, summed BCE + KL over the 10k test images, divided by 10,000. (That number is a negative
ELBO for a Bernoulli likelihood evaluated on grey levels, which is not a likelihood of anything:
see the VAE chapter.) Only the training epochs are timed.

``--diagnose`` adds two variants of the example's loop, each with one of ganlib's differences:
the loss averaged over the batch instead of summed, and the encoder fed images in [-1, 1] (the
range ganlib's data come in) instead of [0, 1]. The second reproduces the 1.8-nat gap that ganlib's
VAE had before its encoder was fed (x + 1) / 2; the first changes nothing beyond seed noise.
"""
from __future__ import annotations

import datetime
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..data import data_root, load_mnist
from ..models import VAE
from ..train import VAEConfig, VAETrainer
from .measure import command_line, device_name, max_rss_mb, versions_line, write_section

MNIST_TRAIN_SIZE = 60_000


class ExamplesVAE(nn.Module):
    """The model of pytorch/examples' VAE, layer for layer (``fc21``/``fc22`` give mu/logvar)."""

    def __init__(self, signed_input: bool = False):
        super().__init__()
        self.signed_input = signed_input  # the --diagnose variant: the encoder sees 2x - 1 in [-1, 1]
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        """``(mu, logvar)``, each (N, 20), of flattened images (N, 784)."""
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def decode(self, z):
        """Pixel probabilities (N, 784) of codes z (N, 20)."""
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        """``(probabilities (N, 784), mu, logvar)`` of images x in [0, 1], one draw of z each."""
        x = x.view(-1, 784)
        mu, logvar = self.encode(2 * x - 1 if self.signed_input else x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def examples_loss(recon_x, x, mu, logvar):
    """The example's ``loss_function``: BCE + KL, summed over all elements and the batch."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def examples_test_loss(forward, test_loader) -> float:
    """The example's ``test()``: ``forward(x01) -> (recon in (0, 1), mu, logvar)`` over the test loader."""
    total = 0.0
    with torch.no_grad():
        for data, _ in test_loader:
            recon, mu, logvar = forward(data)
            total += examples_loss(recon, data, mu, logvar).item()
    return total / len(test_loader.dataset)


def _loaders(batch_size: int):
    import torchvision
    from torchvision import transforms

    root = str(data_root())
    train = torchvision.datasets.MNIST(root, train=True, download=False, transform=transforms.ToTensor())
    test = torchvision.datasets.MNIST(root, train=False, download=False, transform=transforms.ToTensor())
    return (torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True),
            torch.utils.data.DataLoader(test, batch_size=batch_size, shuffle=True))


def run_examples(epochs: int, batch_size: int = 128, seed: int = 1, reduction: str = "sum",
                 signed_input: bool = False) -> dict:
    """Train the example's loop; ``{"images_per_s", "train_s", "test_loss", "steps"}``."""
    torch.manual_seed(seed)
    train_loader, test_loader = _loaders(batch_size)
    model = ExamplesVAE(signed_input)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_s, steps = 0.0, 0
    for _ in range(epochs):
        model.train()
        train_loss = 0.0
        start = time.perf_counter()
        for data, _ in train_loader:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = examples_loss(recon_batch, data, mu, logvar)
            if reduction == "mean":
                loss = loss / len(data)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
            steps += 1
        train_s += time.perf_counter() - start
    model.eval()
    test = examples_test_loss(model, test_loader)
    return {"images_per_s": epochs * MNIST_TRAIN_SIZE / train_s, "train_s": train_s, "test_loss": test,
            "steps": steps}


def run_ganlib(epochs: int, batch_size: int = 128, seed: int = 1) -> dict:
    """Train ganlib's VAETrainer on the same layers; the test loss by the example's ``test()``."""
    torch.manual_seed(seed)
    images, _ = load_mnist("train", download=False)
    vae = VAE((1, 28, 28), latent_dim=20, hidden=(400,))
    steps = epochs * (len(images) // batch_size)  # whole batches: 468 per epoch against the example's 469
    trainer = VAETrainer(vae, images, VAEConfig(steps=steps, batch_size=batch_size, lr=1e-3, seed=seed,
                                                device="cpu", progress=False))
    start = time.perf_counter()
    trainer.fit()
    train_s = time.perf_counter() - start
    _, test_loader = _loaders(batch_size)
    vae.eval()

    def forward(x01):
        mu, logvar = vae.encode(x01 * 2 - 1)  # ganlib's data range is [-1, 1]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(vae.decode(z)).view(-1, 784), mu, logvar

    return {"images_per_s": steps * batch_size / train_s, "train_s": train_s,
            "test_loss": examples_test_loss(forward, test_loader), "steps": steps}


def vae_benchmark(args, argv) -> dict:
    """Run both loops (``args.epochs``, ``args.batch_size``, ``args.seed``); print and optionally append."""
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = {}
    for name, run in [("pytorch/examples", lambda: run_examples(args.epochs, args.batch_size, args.seed)),
                      ("ganlib VAETrainer", lambda: run_ganlib(args.epochs, args.batch_size, args.seed))]:
        print(f"training {name} for {args.epochs} epochs ...", flush=True)
        runs[name] = run()
        print(f"  {runs[name]['images_per_s']:,.0f} images/s, test loss {runs[name]['test_loss']:.2f}", flush=True)
    if args.diagnose:
        for name, kw in [("pytorch/examples, loss averaged over the batch", {"reduction": "mean"}),
                         ("pytorch/examples, encoder fed [-1, 1]", {"signed_input": True})]:
            print(f"training {name} ...", flush=True)
            runs[name] = run_examples(args.epochs, args.batch_size, args.seed, **kw)
            print(f"  {runs[name]['images_per_s']:,.0f} images/s, test loss {runs[name]['test_loss']:.2f}",
                  flush=True)
    base = runs["pytorch/examples"]
    rows = ["| loop | images/s | vs examples | train time | steps | test loss (nats, the example's test()) |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, r in runs.items():
        rows.append(f"| {name} | {r['images_per_s']:,.0f} | {r['images_per_s'] / base['images_per_s']:.2f}x | "
                    f"{r['train_s']:.0f} s | {r['steps']:,} | {r['test_loss']:.2f} |")
    ours = runs["ganlib VAETrainer"]
    ratio = (f"ratio ganlib/examples = {ours['images_per_s'] / base['images_per_s']:.2f} in images/s; test loss "
             f"{ours['test_loss'] - base['test_loss']:+.2f} nats against the example's")
    table = "\n".join(rows)
    print("\n" + table + "\n" + ratio)
    if args.out:
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        header = [f"date: {date}", f"command: `{command_line(argv)}`", f"device: cpu ({device_name('cpu')})",
                  f"versions: {versions_line()}", f"data: MNIST from {data_root()}",
                  f"VAE 784-400-20, batch {args.batch_size}, Adam 1e-3, {args.epochs} epochs, seed {args.seed}, "
                  f"run one after the other in one process; only training epochs are timed"]
        body = "\n".join([f"- {h}" for h in header] + ["", table, "", ratio + f". Process max RSS "
                                                         f"{max_rss_mb():,.0f} MiB."]
                         + ([f"\n{args.note}"] if args.note else []))
        path = write_section(args.out, f"VAE, {date}, {device_name('cpu')}", body)
        print(f"appended to {path}")
    if args.json:  # the same numbers for the VAE chapter, which prints them
        import json
        from pathlib import Path

        record = {"command": command_line(argv), "date": datetime.datetime.now(datetime.timezone.utc)
                  .isoformat(timespec="seconds"), "device": f"cpu ({device_name('cpu')})", "versions": versions_line(),
                  "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed, "runs": runs}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")
    return runs
