"""Shared pytest fixtures."""
import pytest
import torch


@pytest.fixture
def single_thread():
    """Run a test with one torch thread: the tiny models in tests are faster that way on small CI
    machines, where several threads fight over two cores. Restores the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mnist():
    """The offline MNIST splits, ``{"train": (images, labels), "test": (images, labels)}``; the test
    is skipped, with the reason, where the data are not on disk."""
    from ganlib.data import DatasetNotFoundError, load_mnist

    try:
        return {split: load_mnist(split, download=False) for split in ("train", "test")}
    except DatasetNotFoundError as err:
        pytest.skip(f"MNIST not available: {err}")
