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
