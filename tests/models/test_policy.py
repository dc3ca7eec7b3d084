"""A loaded policy acts on the instructions it was trained on (in whatever case and punctuation), and
says so of any other; it takes a camera's frames at any shape, as training fitted them, and names
what is wrong with a batch."""

from __future__ import annotations

import re

import pytest
import torch

from leanvla.data.resize import fit_square_chw
from leanvla.errors import UserError
from leanvla.models.checkpoint import load_policy
from tests.models.test_checkpoint import _save


def test_an_instruction_the_policy_never_saw_is_one_clear_error(tmp_path):
    _, path = _save(tmp_path)
    policy = load_policy(path)
    assert policy.task_id("reach the goal position") == 0
    assert policy.task_id("Reach  the goal position.") == 0  # the same words to the policy
    with pytest.raises(
        UserError,
        match="the policy was not trained on the instruction 'open the door' \\(it knows: \\['reach the goal position'\\]\\)",
    ):
        policy.task_id("open the door")
    with pytest.raises(UserError, match="^an instruction is a string, got NoneType$"):
        policy.task_id(None)


def test_frames_of_another_shape_give_the_actions_of_the_same_frames_fitted_beforehand(tmp_path):
    _, path = _save(tmp_path)  # a policy of 16 x 16 images, one camera
    policy = load_policy(path)
    frames = torch.randint(0, 256, (2, 1, 3, 24, 40), dtype=torch.uint8)  # a wide camera, as it gives them
    fitted = fit_square_chw(frames.flatten(0, 1), 16).unflatten(0, (2, 1))
    state, task = torch.randn(2, 4), torch.zeros(2, dtype=torch.long)
    as_given = policy.act(frames, state, task, torch.Generator().manual_seed(0))
    assert torch.equal(as_given, policy.act(fitted, state, task, torch.Generator().manual_seed(0)))


def test_a_policy_trained_on_crops_crops_the_frames_it_is_given(tmp_path):
    policy = load_policy(_save(tmp_path, image_fit="crop")[1])
    frames = torch.randint(0, 256, (2, 1, 3, 16, 28), dtype=torch.uint8)  # 16 high: the crop is 16 x 16
    centre = frames[..., 6:22]
    state, task = torch.randn(2, 4), torch.zeros(2, dtype=torch.long)
    as_given = policy.act(frames, state, task, torch.Generator().manual_seed(0))
    assert torch.equal(as_given, policy.act(centre, state, task, torch.Generator().manual_seed(0)))
    padded = fit_square_chw(frames.flatten(0, 1), 16).unflatten(0, (2, 1))
    assert not torch.equal(as_given, policy.act(padded, state, task, torch.Generator().manual_seed(0)))


def test_noise_given_is_the_noise_a_generator_would_have_drawn(tmp_path):
    policy = load_policy(_save(tmp_path)[1])  # flow head: the chunk follows its noise
    images = torch.randint(0, 256, (3, 1, 3, 16, 16), dtype=torch.uint8)
    state, task = torch.randn(3, 4), torch.zeros(3, dtype=torch.long)
    noise = torch.randn(3, policy.chunk_size, policy.action_dim, generator=torch.Generator().manual_seed(5))
    given = policy.act(images, state, task, noise=noise)
    assert torch.equal(given, policy.act(images, state, task, torch.Generator().manual_seed(5)))
    assert not torch.equal(given, policy.act(images, state, task, noise=noise + 1))
    with pytest.raises(
        UserError, match=re.escape("noise must be B x chunk x action (3 x 4 x 4), got (3, 4)")
    ):
        policy.act(images, state, task, noise=noise[..., 0])
    # numpy's float64 is taken as float32; what is not a float tensor, or is not finite, is refused
    assert torch.equal(given, policy.act(images, state, task, noise=noise.double()))
    with pytest.raises(UserError, match="^noise must be a float tensor, got ndarray$"):
        policy.act(images, state, task, noise=noise.numpy())
    with pytest.raises(UserError, match="^noise holds a NaN or an infinity: every action would be NaN$"):
        policy.act(
            images, state, task, noise=noise.index_put((torch.tensor([1]),), torch.tensor(float("nan")))
        )


def test_a_batch_of_no_samples_gives_no_chunks(tmp_path):
    policy = load_policy(_save(tmp_path)[1])
    images, state, task = (
        torch.zeros(0, 1, 3, 16, 16, dtype=torch.uint8),
        torch.zeros(0, 4),
        torch.zeros(0).long(),
    )
    assert policy.act(images, state, task).shape == (0, policy.chunk_size, policy.action_dim)


def test_cameras_of_different_sizes_go_in_as_one_tensor_each(tmp_path):
    policy = load_policy(_save(tmp_path, cameras=("observation.images.top", "observation.images.wrist"))[1])
    top = torch.randint(0, 256, (2, 3, 48, 64), dtype=torch.uint8)
    wrist = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    state, task = torch.randn(2, 4), torch.zeros(2, dtype=torch.long)
    per_camera = policy.act([top, wrist], state, task, torch.Generator().manual_seed(0))
    stacked = torch.stack([fit_square_chw(top, 16), wrist], 1)
    assert torch.equal(per_camera, policy.act(stacked, state, task, torch.Generator().manual_seed(0)))


ONE = (2, 1, 3, 16, 16)  # a batch of 2 for a policy of one 16 x 16 camera


@pytest.mark.parametrize(
    "images, state, task, message",
    [
        (
            (1, 3, 16, 16),  # no camera axis
            (1, 4),
            (1,),
            "images must be B x 1 x 3 x H x W, or one B x 3 x H x W tensor per camera "
            "(observation.images.cam), got shape (1, 3, 16, 16)",
        ),
        (
            (2, 2, 3, 16, 16),
            (2, 4),
            (2,),
            "images hold 2 cameras; the policy observes 1: observation.images.cam",
        ),
        (
            (2, 1, 16, 16, 3),  # channels last
            (2, 4),
            (2,),
            "observation.images.cam: frames must be B x 3 x H x W with B = 2 (the first camera's batch), "
            "got shape (2, 16, 16, 3)",
        ),
        (ONE, (2, 5), (2,), "state must be B x 4 with B = 2 (the images' batch), got shape (2, 5)"),
        (ONE, (3, 4), (2,), "state must be B x 4 with B = 2"),
        (
            ONE,
            (2, 4),
            (2, 1),
            "task_index must hold one instruction index per sample (2), got shape (2, 1); Policy.task_id",
        ),
    ],
)
def test_a_batch_of_the_wrong_shape_is_one_clear_error(tmp_path, images, state, task, message):
    policy = load_policy(_save(tmp_path)[1])
    with pytest.raises(UserError, match=f"^{re.escape(message)}"):
        policy.act(
            torch.zeros(images, dtype=torch.uint8), torch.zeros(state), torch.zeros(task, dtype=torch.long)
        )


def test_frames_that_are_not_uint8_tensors_or_disagree_on_the_batch_are_one_clear_error(tmp_path):
    policy = load_policy(_save(tmp_path, cameras=("observation.images.top", "observation.images.wrist"))[1])
    state, task = torch.zeros(2, 4), torch.zeros(2, dtype=torch.long)
    frames = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(
        UserError, match="^observation.images.wrist: frames must be uint8 .*, got torch.float32$"
    ):
        policy.act([frames, frames.float()], state, task)
    with pytest.raises(
        UserError, match=r"^observation.images.wrist: frames must be B x 3 x H x W with B = 2"
    ):
        policy.act([frames, frames[:1]], state, task)
    with pytest.raises(UserError, match=r"^images must be torch tensors \(torch.from_numpy\(frame\)"):
        policy.act([frames, frames.numpy()], state, task)
    with pytest.raises(
        UserError, match="^observation.images.wrist: frames are 0 x 16 pixels; give the camera's image$"
    ):
        policy.act([frames, frames[:, :, :0]], state, task)


def test_a_state_or_task_index_the_policy_cannot_use_is_one_clear_error(tmp_path):
    policy = load_policy(_save(tmp_path)[1])  # one instruction, a state of 4
    frames, state, task = (
        torch.zeros(2, 1, 3, 16, 16, dtype=torch.uint8),
        torch.zeros(2, 4),
        torch.zeros(2).long(),
    )
    for bad_state, message in (
        (
            state.numpy(),
            r"state must be a float tensor \(torch.from_numpy\(state\).float\(\)\[None\] wraps a "
            r"robot's 4 numbers\), got ndarray$",
        ),
        (state.long(), r"state must be a float tensor .*, got torch.int64$"),
        (
            torch.tensor([[0.0, 0, 0, 0], [0, 0, float("inf"), 0]]),
            r"^state\[1, 2\] is inf: the policy's actions",
        ),
    ):
        with pytest.raises(UserError, match=message):
            policy.act(frames, bad_state, task)
    for bad_task, message in (
        (
            0,
            r"^task_index must be an integer tensor, got int; torch.tensor\(\[policy.task_id\(instruction\)\]\)",
        ),
        (task.float(), r"^task_index must be an integer tensor, got torch.float32"),
        (task.bool(), r"^task_index must be an integer tensor, got torch.bool"),
        (
            torch.tensor([0, 3]),
            r"^task_index holds 3, but the policy knows 1 instruction \(0..0\); Policy.task_id",
        ),
        (torch.tensor([-1, 0]), r"^task_index holds -1, but"),
    ):
        with pytest.raises(UserError, match=message):
            policy.act(frames, state, bad_task)
    # A robot's float64 state (numpy's default) is taken as the float32 it would have been given.
    generator = torch.Generator().manual_seed(0)
    chunk = policy.act(frames, state.double(), task.int(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(chunk, policy.act(frames, state, task, generator=generator))
    # a uint8 index is an index (as a mask it selected no instruction: an IndexError)
    by_byte = policy.act(frames, state, task.to(torch.uint8), generator=torch.Generator().manual_seed(0))
    assert torch.equal(chunk, by_byte)


def _act(policy, frames_shape=(2, 1, 3, 24, 40)):
    frames = torch.randint(
        0, 256, frames_shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    state, task = torch.randn(frames_shape[0], 4), torch.zeros(frames_shape[0], dtype=torch.long)
    return policy.act(frames, state, task, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("head", ["flow", "regression", "cnn"])
def test_a_policy_moved_to_another_device_acts_there_on_inputs_from_the_cpu(tmp_path, data, head):
    # The meta device holds no data, but a tensor left on the CPU beside it fails as it would beside
    # CUDA: every tensor the policy touches has to move with it.
    from tests.helpers import train_tiny_cnn

    path = train_tiny_cnn(data, tmp_path / "cnn") if head == "cnn" else _save(tmp_path, head=head)[1]
    policy = load_policy(path)
    frames = (2, len(policy.cameras), 3, 24, 40)
    assert policy.to("meta") is policy and policy.device == torch.device("meta")
    chunk = _act(policy, frames)
    assert chunk.device == torch.device("meta") and chunk.shape == (2, policy.chunk_size, policy.action_dim)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_policy_acts_as_on_the_cpu(tmp_path):
    _, path = _save(tmp_path)
    on_cpu = _act(load_policy(path))
    on_gpu = _act(load_policy(path).to("cuda"))
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-4)  # the same noise, drawn on the CPU
