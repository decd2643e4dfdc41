"""ganlib.data: the data root, the offline error, toy distributions and the device-resident loader."""
import math
import urllib.error

import pytest
import torch

from ganlib import data


def test_data_root_follows_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv("GANLIB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "ganlib" / "data"


def test_missing_dataset_offline_gives_one_paragraph_that_says_how_to_fix_it(monkeypatch, tmp_path):
    import torchvision.datasets.mnist as tv_mnist

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    monkeypatch.setenv("GANLIB_DATA", str(tmp_path))
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.load_mnist("train")
    message = str(info.value)
    assert "\n" not in message  # one paragraph, not a traceback dump
    assert "MNIST" in message and str(tmp_path / "MNIST" / "raw") in message
    assert "GANLIB_DATA" in message and "internet" in message


def test_mnist_from_the_data_root_is_scaled_to_minus_one_one():
    root = data.data_root()
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST is not in {root}; set GANLIB_DATA to a folder that holds MNIST/raw")
    images, labels = data.load_mnist("test", download=False)
    assert images.shape == (10_000, 1, 28, 28) and labels.shape == (10_000,)
    assert images.min() == -1.0 and images.max() == 1.0
    assert set(labels.unique().tolist()) == set(range(10))


def test_digits_splits_are_disjoint_and_cover_everything():
    images, labels = data.load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.min() == -1 and images.max() == 1
    train, test = data.load_digits("train")[0], data.load_digits("test")[0]
    assert len(train) + len(test) == 1797 and len(test) == round(0.2 * 1797)
    # no test image is also a train image at the same index of the shuffle
    both = torch.cat([train, test]).flatten(1)
    assert torch.unique(both, dim=0).shape[0] == torch.unique(images.flatten(1), dim=0).shape[0]


def test_ring_modes_are_evenly_spaced_and_distinct():
    ring = data.gaussian_ring(n_modes=8, radius=1.0, std=0.01)
    assert torch.allclose(ring.centers.norm(dim=1), torch.ones(8))
    gaps = torch.cdist(ring.centers, ring.centers) + 10 * torch.eye(8)
    # neighbours on a unit circle with 8 modes are 2 sin(pi/8) apart; no two modes coincide
    assert gaps.min().item() == pytest.approx(2 * math.sin(math.pi / 8), rel=1e-5)


def test_grid_has_pacgan_centres():
    grid = data.gaussian_grid()
    expected = {(-4 + 2 * i, -4 + 2 * j) for i in range(5) for j in range(5)}
    assert {tuple(round(v) for v in c.tolist()) for c in grid.centers} == expected
    assert grid.std ** 2 == pytest.approx(0.0025)


@pytest.mark.parametrize("dist", [data.Gaussian1D(), data.gaussian_ring(), data.gaussian_grid(),
                                  data.TwoMoons(), data.Spiral()])
def test_toy_samples_are_seeded_and_shaped(dist):
    a = dist.sample(500, generator=torch.Generator().manual_seed(1))
    b = dist.sample(500, generator=torch.Generator().manual_seed(1))
    assert a.shape == (500, dist.dim) and torch.equal(a, b)


def test_gaussian_1d_moments():
    x = data.Gaussian1D(mean=4.0, std=1.25).sample(200_000, torch.Generator().manual_seed(0))
    assert x.mean().item() == pytest.approx(4.0, abs=0.01)
    assert x.std().item() == pytest.approx(1.25, rel=0.01)


def test_mixture_samples_stay_near_their_modes():
    ring = data.gaussian_ring(std=0.01)
    x = ring.sample(2000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(x, ring.centers).min(dim=1).values
    assert (nearest < 5 * ring.std).all()


def test_device_loader_epoch_is_a_permutation():
    x = torch.arange(10).float().unsqueeze(1)
    loader = data.DeviceLoader(x, batch_size=3, seed=0)
    assert len(loader) == 3  # drop_last
    seen = torch.cat([b for (b,) in loader]).flatten()
    assert len(seen) == 9 and len(set(seen.tolist())) == 9


def test_device_loader_resumes_mid_epoch_with_the_same_batches():
    x = torch.randn(50, 2)
    ref = data.DeviceLoader(x, batch_size=8, seed=3)
    expected = [ref.next_batch()[0] for _ in range(15)]  # crosses two epoch boundaries

    first = data.DeviceLoader(x, batch_size=8, seed=3)
    got = [first.next_batch()[0] for _ in range(7)]
    state = first.state_dict()
    second = data.DeviceLoader(x, batch_size=8, seed=999)  # the state, not the seed, decides
    second.load_state_dict(state)
    got += [second.next_batch()[0] for _ in range(8)]
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_device_loader_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        data.DeviceLoader(torch.zeros(5), torch.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        data.DeviceLoader(torch.zeros(5), batch_size=6)
