"""Version (a) of the benchmark: the training loop of PyTorch's DCGAN example, and its data.

The loop is written the way ``pytorch/examples/dcgan`` writes it, on ganlib's 28x28 DCGAN models,
so that (b) and (c) are timed against the code most readers start from.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import DatasetNotFoundError, data_root, load_mnist
from ..env import seed_everything
from ..models import DCGANDiscriminator, DCGANGenerator

LATENT_DIM = 100
IMAGE_SHAPE = (1, 28, 28)
MNIST_TRAIN_SIZE = 60_000


def mnist_tensors(device="cpu", allow_random: bool = True):
    """``(images in [-1, 1], source description)``: MNIST if on disk, else random stand-ins."""
    try:
        images, _ = load_mnist("train", download=False)
        return images.to(device), f"MNIST train (60,000 images from {data_root()})"
    except DatasetNotFoundError:
        if not allow_random:
            raise
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(MNIST_TRAIN_SIZE, *IMAGE_SHAPE, generator=gen) * 2 - 1
    return images.to(device), "random tensors of MNIST's shape (MNIST not found under $GANLIB_DATA)"


def classic_dataset(real: bool):
    """The classic loop's dataset: torchvision MNIST (or FakeData) with ToTensor + Normalize."""
    import torchvision  # on use: versions (b) and (c) never load it
    import torchvision.transforms as T

    transform = T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    if real:
        return torchvision.datasets.MNIST(str(data_root()), train=True, download=False, transform=transform)
    return torchvision.datasets.FakeData(size=MNIST_TRAIN_SIZE, image_size=IMAGE_SHAPE, num_classes=10,
                                         transform=transform, random_offset=0)


class ClassicLoop:
    """The training loop of PyTorch's DCGAN example, on ganlib's 28x28 DCGAN models.

    Written the way the example writes it: D ends in a sigmoid and trains with ``BCELoss`` on
    label tensors; D's step is two backward passes (real, then ``fake.detach()``); G's step reuses
    the same fakes; every step reads five numbers back with ``.item()`` for the log line.
    """

    def __init__(self, dataset, batch_size: int, device, workers: int = 2, seed: int = 0):

        seed_everything(seed)
        self.device = torch.device(device)
        self.netG = DCGANGenerator(LATENT_DIM, image_size=28, channels=1).to(self.device)
        self.netD = nn.Sequential(DCGANDiscriminator(image_size=28, channels=1), nn.Sigmoid()).to(self.device)
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        # drop_last keeps every timed batch the same size as the other versions' batches
        self.dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                                      num_workers=workers, drop_last=True)
        self.batches = self._forever()
        self.log_line = ""

    def _forever(self):
        epoch = 0
        while True:  # one pass over the DataLoader per epoch, as ``for epoch in range(...)`` does
            for i, data in enumerate(self.dataloader):
                yield epoch, i, data
            epoch += 1

    def step(self) -> None:
        """One iteration of the example's loop: a D step on a real and a fake batch, then a G step."""
        real_label, fake_label = 1.0, 0.0
        epoch, i, data = next(self.batches)
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        self.netD.zero_grad()
        real_cpu = data[0].to(self.device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=self.device)
        output = self.netD(real_cpu).view(-1)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(batch_size, LATENT_DIM, device=self.device)
        fake = self.netG(noise)
        label.fill_(fake_label)
        output = self.netD(fake.detach()).view(-1)
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) Update G: maximize log(D(G(z)))
        self.netG.zero_grad()
        label.fill_(real_label)
        output = self.netD(fake).view(-1)
        errG = self.criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        self.optimizerG.step()
        # the example prints this line every step; we format it (printing thousands of lines
        # would time the terminal, not the training)
        self.log_line = (f"[{epoch}][{i}/{len(self.dataloader)}] Loss_D: {errD.item():.4f} "
                         f"Loss_G: {errG.item():.4f} D(x): {D_x:.4f} D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}")
