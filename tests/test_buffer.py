"""Rollout storage and the per-epoch minibatch split."""

from __future__ import annotations

import math

import pytest
import torch

from ppo.rollout import Rollout
from ppo.update import Samples, minibatches, take_rows


def split(index, batch_size, seed=0):
    """The minibatches of ``index`` as tensors of its entries."""
    return [index[batch] for batch in minibatches(len(index), batch_size, torch.Generator().manual_seed(seed))]


@pytest.mark.parametrize("n, batch_size", [(256, 256), (256, 64), (100, 7), (10, 3), (5, 5), (1, 1), (7, 100),
                                           (20, 5), (33, 32)])
def test_every_index_is_used_exactly_once_per_epoch(n, batch_size):
    """The minibatches of one epoch are a partition of the index: each entry exactly once."""
    index = torch.arange(n)
    batches = split(index, batch_size)
    assert sorted(torch.cat(batches).tolist()) == list(range(n))


@pytest.mark.parametrize("n, batch_size", [(100, 7), (10, 3), (33, 32), (7, 100), (257, 256), (1000, 64)])
def test_minibatch_sizes_differ_by_at_most_one_and_never_exceed_batch_size(n, batch_size):
    """ceil(n / batch_size) minibatches, each of at most batch_size entries, sizes within one of each other."""
    sizes = [len(b) for b in split(torch.arange(n), batch_size)]
    assert len(sizes) == math.ceil(n / batch_size)
    assert max(sizes) <= batch_size
    assert max(sizes) - min(sizes) <= 1
    assert min(sizes) >= 1


@pytest.mark.parametrize("n, batch_size", [(256, 256), (256, 64), (20, 5), (12, 1)])
def test_all_minibatches_have_batch_size_when_it_divides(n, batch_size):
    """When batch_size divides the index length every minibatch has exactly batch_size entries."""
    sizes = [len(b) for b in split(torch.arange(n), batch_size)]
    assert sizes == [batch_size] * (n // batch_size)


def test_a_subset_index_is_respected():
    """Only the given (trainable) positions appear: a subset index is split, not the full range."""
    trainable = torch.ones(40, dtype=torch.bool)
    trainable[[0, 3, 17, 18, 39]] = False
    index = trainable.nonzero().squeeze(1)
    batches = split(index, 8)
    used = torch.cat(batches).tolist()
    assert sorted(used) == index.tolist()
    assert not {0, 3, 17, 18, 39} & set(used)
    assert len(batches) == math.ceil(35 / 8)


def test_samples_drop_reset_steps_and_keep_each_transition_aligned():
    """The update's samples: (T, N, ...) tensors flattened to one row per transition, without the
    steps that are not trainable (next-step autoreset's reset steps), the same rows in every tensor,
    whatever its trailing shape."""
    T, N, D = 4, 3, 2
    step_id = torch.arange(T * N).view(T, N)  # 3 * t + n
    obs = step_id.unsqueeze(-1).repeat(1, 1, D).float() + torch.tensor([0.0, 0.5])  # (T, N, D)
    trainable = torch.ones(T, N, dtype=torch.bool)
    trainable[0, 1] = trainable[2, 0] = trainable[3, 2] = False
    samples = Samples.gather(trainable, obs, step_id, 2.0 * step_id, 3.0 * step_id, 4.0 * step_id, 5.0 * step_id)
    expected = [i for i in range(T * N) if i not in (1, 6, 11)]
    assert samples.obs.shape == (len(expected), D) and samples.obs[:, 0].tolist() == expected
    assert (samples.obs[:, 1] - samples.obs[:, 0]).eq(0.5).all()
    for factor, field in enumerate(samples[1:], start=1):
        assert field.tolist() == [factor * i for i in expected]
    minibatch = samples.rows(torch.tensor([2, 0]))
    assert [field.tolist() for field in minibatch[1:]] == [[factor * expected[2], factor * expected[0]]
                                                           for factor in range(1, 6)]


def test_the_split_is_a_shuffle():
    """The order within an epoch is random, not the index order (a fixed seed, so this cannot flake)."""
    assert torch.cat(split(torch.arange(100), 10, seed=3)).tolist() != list(range(100))


def test_same_generator_seed_gives_the_same_split():
    """Minibatches depend only on the generator's state: same seed, same split; another seed, another."""
    a = split(torch.arange(64), 16, seed=7)
    b = split(torch.arange(64), 16, seed=7)
    c = split(torch.arange(64), 16, seed=8)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [x.tolist() for x in a] != [x.tolist() for x in c]


def test_consecutive_epochs_reshuffle():
    """One generator used for two epochs gives two different splits."""
    generator = torch.Generator().manual_seed(0)
    first = minibatches(64, 16, generator)
    second = minibatches(64, 16, generator)
    assert [x.tolist() for x in first] != [x.tolist() for x in second]


@pytest.mark.parametrize("n", [1, 5, 256])
def test_one_minibatch_is_all_samples_in_order_without_a_draw(n):
    """When the batch holds every sample, the split is the identity: a slice, so indexing with it is a
    view (no copy of the samples), and the generator is left as it was (no shuffle whose order the
    mean loss would ignore anyway)."""
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    samples = torch.arange(n)
    (batch,) = minibatches(n, 256, generator)
    assert samples[batch].data_ptr() == samples.data_ptr() and samples[batch].tolist() == list(range(n))
    assert torch.equal(generator.get_state(), state)


def test_an_empty_index_gives_no_minibatches():
    """A rollout with no trainable transition (possible in next-step autoreset mode with n_steps=1,
    num_envs=1: the one step is a reset step) has nothing to train on: zero minibatches, no crash.
    The docstring's ceil(0 / batch_size) = 0 minibatches."""
    assert len(split(torch.arange(0), 4)) == 0


def test_allocate_shapes_and_dtypes():
    """Every field is (T, N, ...) zeros on the host: obs and final_obs float (T, N, obs_dim), actions
    long, trainable/has_final_obs bool, the rest float32."""
    T, N, D = 5, 3, 4
    rollout = Rollout.allocate(T, N, D)
    for name in ("obs", "final_obs"):
        tensor = getattr(rollout, name)
        assert tensor.shape == (T, N, D) and tensor.dtype == torch.float32, name
    assert rollout.actions.shape == (T, N) and rollout.actions.dtype == torch.long
    for name in ("log_probs", "rewards", "terminated", "ended"):
        tensor = getattr(rollout, name)
        assert tensor.shape == (T, N) and tensor.dtype == torch.float32, name
    for name in ("trainable", "has_final_obs"):
        tensor = getattr(rollout, name)
        assert tensor.shape == (T, N) and tensor.dtype == torch.bool, name
    for name in ("obs", "actions", "log_probs", "rewards", "terminated", "ended", "trainable",
                 "final_obs", "has_final_obs"):
        tensor = getattr(rollout, name)
        assert tensor.device.type == "cpu"
        assert not tensor.any(), name


def test_next_step_resets_allocate_no_final_obs():
    """In next-step autoreset mode no final obs is stored: that storage is empty, the rest as always."""
    rollout = Rollout.allocate(5, 3, (4, 84, 84), obs_dtype=torch.uint8, same_step_resets=False)
    assert rollout.final_obs.numel() == 0 and rollout.final_obs.dtype == torch.uint8
    assert rollout.obs.shape == (5, 3, 4, 84, 84) and rollout.has_final_obs.shape == (5, 3)


def test_allocated_fields_do_not_share_memory():
    """Writing one field leaves the others untouched."""
    rollout = Rollout.allocate(2, 2, 1)
    rollout.rewards.fill_(3.0)
    assert not rollout.log_probs.any() and not rollout.terminated.any() and not rollout.final_obs.any()


def test_to_the_same_device_shares_the_tensors():
    """Moving a rollout to the device it is on copies nothing (the CPU training path)."""
    rollout = Rollout.allocate(2, 2, 1)
    moved = rollout.to("cpu")
    assert moved.obs is rollout.obs and moved.has_final_obs is rollout.has_final_obs


def test_next_values_is_the_values_shifted_by_one_with_last_values_at_the_end():
    """next_values[t] = values[t+1] for t < T-1, and next_values[T-1] = last_values."""
    rollout = Rollout.allocate(4, 2, 1)
    values = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    got = rollout.next_values(values, torch.tensor([5.0, 50.0]), final_values=None)
    torch.testing.assert_close(got, torch.tensor([[2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [5.0, 50.0]]))


def test_next_values_takes_final_values_where_has_final_obs():
    """Where has_final_obs is set (a same-step reset replaced the obs), next_values is V(final obs),
    including at the last step; elsewhere the shifted values."""
    rollout = Rollout.allocate(3, 2, 1)
    values = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    final_values = torch.tensor([[-1.0, -10.0], [-2.0, -20.0], [-3.0, -30.0]])
    rollout.has_final_obs[0, 1] = True
    rollout.has_final_obs[2, 0] = True
    got = rollout.next_values(values, torch.tensor([4.0, 40.0]), final_values)
    torch.testing.assert_close(got, torch.tensor([[2.0, -10.0], [3.0, 30.0], [-3.0, 40.0]]))


@pytest.mark.parametrize("shape", [(10,), (10, 3), (10, 4, 6, 5)])
def test_take_rows_is_indexing_by_rows(shape):
    tensor = torch.randn(shape)
    index = torch.tensor([9, 2, 2, 0])
    assert torch.equal(take_rows(tensor, index), tensor[index])


def test_take_rows_keeps_channels_last_images_channels_last():
    images = torch.randint(0, 256, (10, 4, 6, 5), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    rows = take_rows(images, torch.tensor([3, 8]))
    assert torch.equal(rows, images[[3, 8]]) and rows.is_contiguous(memory_format=torch.channels_last)
