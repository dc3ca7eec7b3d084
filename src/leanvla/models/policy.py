"""The interface between models and the rest of leanvla (training, evaluation, the methods).

A model (the VLA or the plain CNN baseline) implements two calls on normalised inputs:
    action_error(obs, actions, noise, t) -> B x H per-step training error
    predict(obs, noise)                  -> B x H x A normalised action chunk
`Policy` wraps a model with its normaliser and instruction list, so callers pass raw observations
and get actions in the environment's units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn

from leanvla.data.normalize import Normalizer
from leanvla.data.resize import fit_square_chw
from leanvla.errors import UserError, require

# uint8 camera frames: B x N x 3 x H x W, or one B x 3 x H x W tensor per camera (sizes may differ)
Frames = torch.Tensor | Sequence[torch.Tensor]
# What an instruction index may be held in (not bool: a bool tensor indexes as a mask).
INDEX_TYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


@dataclass
class Observation:
    """A batch of normalised observations, in the form every model accepts."""

    images: torch.Tensor  # B x N_cam x 3 x H x W, normalised
    state: torch.Tensor  # B x S, normalised
    tokens: torch.Tensor  # B x L instruction token ids
    token_mask: torch.Tensor  # B x L bool
    task_index: torch.Tensor  # B, index into the policy's instruction list

    def map(self, fn) -> Observation:
        """This observation with `fn` applied to each of its tensors (to move or slice them)."""
        return Observation(*(fn(getattr(self, field.name)) for field in fields(self)))


class Policy:
    """A model plus what it needs to act: normaliser, instructions, chunking, config."""

    def __init__(self, model: nn.Module, normalizer: Normalizer, meta: dict):
        self.model = model
        self.normalizer = normalizer
        self.meta = meta
        self.instructions: list[str] = meta["instructions"]
        self.cameras: list[str] = meta["model"]["cameras"]
        self.chunk_size: int = meta["model"]["chunk_size"]
        self.n_action_steps: int = meta["model"]["n_action_steps"]
        self.action_dim: int = meta["model"]["action_dim"]
        self._tokens, self._token_mask = model.tokenizer.batch(self.instructions)
        self.device = next(model.parameters()).device

    def to(self, device: str | torch.device) -> Policy:
        """Act on `device` (e.g. "cuda"): inputs may come from anywhere and are moved there (after
        fitting, so only the policy-sized frames travel); actions come back on it."""
        self.device = torch.device(device)
        self.model.to(self.device)
        self.normalizer.to(self.device)
        self._tokens, self._token_mask = self._tokens.to(self.device), self._token_mask.to(self.device)
        return self

    def observation(self, images_uint8: Frames, state: torch.Tensor, task_index: torch.Tensor) -> Observation:
        """Raw batch -> normalised Observation. Images are uint8, either B x N x 3 x H x W or one
        B x 3 x H x W tensor per camera (in `self.cameras`' order, each of its own size); state is
        B x S; task_index holds B instruction indices (`task_id`).

        Frames of another size or shape are fitted to the policy's square as its training images
        were (leanvla.data.resize): a robot's 480 x 640 frames go in as the camera gives them.
        """
        images = self._fitted(images_uint8).to(self.device)
        batch = images.shape[0]
        state = self._checked_state(state, batch)
        self._check_task_index(task_index, batch)
        # long: a uint8 index tensor would index as a mask
        state, task_index = state.to(self.device, torch.float32), task_index.to(self.device, torch.long)
        return Observation(
            images=self.normalizer.images(images),
            state=self.normalizer.state(state),
            tokens=self._tokens[task_index],
            token_mask=self._token_mask[task_index],
            task_index=task_index,
        )

    def _checked_state(self, state: torch.Tensor, batch: int) -> torch.Tensor:
        """The state, a B x S tensor of finite numbers (of any float type: a robot's are often
        float64). A NaN or an infinity is refused: it would make every action of the chunk NaN."""
        state_dim = self.meta["model"]["state_dim"]
        require(
            isinstance(state, torch.Tensor) and state.is_floating_point(),
            f"state must be a float tensor (torch.from_numpy(state).float()[None] wraps a robot's {state_dim} "
            f"numbers), got {type(state).__name__ if not isinstance(state, torch.Tensor) else state.dtype}",
        )
        require(
            state.shape == (batch, state_dim),
            f"state must be B x {state_dim} with B = {batch} (the images' batch), got shape {tuple(state.shape)}",
        )
        if not bool(torch.isfinite(state).all()):  # one read-back a chunk, where the input is on the GPU
            sample, dimension = (int(i) for i in (~torch.isfinite(state)).nonzero()[0])
            raise UserError(
                f"state[{sample}, {dimension}] is {float(state[sample, dimension])}: the policy's actions "
                "would all be NaN (a sensor that dropped out?); give it finite numbers"
            )
        return state

    def _check_task_index(self, task_index: torch.Tensor, batch: int) -> None:
        """B integer indices into the policy's instructions (`task_id` gives one)."""
        given = task_index.dtype if isinstance(task_index, torch.Tensor) else type(task_index).__name__
        require(
            isinstance(task_index, torch.Tensor) and task_index.dtype in INDEX_TYPES,
            f"task_index must be an integer tensor, got {given}; torch.tensor([policy.task_id(instruction)]) "
            "gives one",
        )
        require(
            task_index.shape == (batch,),
            f"task_index must hold one instruction index per sample ({batch}), got shape "
            f"{tuple(task_index.shape)}; Policy.task_id(instruction) gives the index",
        )
        known = len(self.instructions)
        if batch and not (0 <= int(task_index.min()) and int(task_index.max()) < known):
            outside = task_index[(task_index < 0) | (task_index >= known)]
            raise UserError(
                f"task_index holds {outside[0].item()}, but the policy knows {known} "
                f"instruction{'s' if known != 1 else ''} (0..{known - 1}); Policy.task_id(instruction) gives the index"
            )

    def _fitted(self, images: Frames) -> torch.Tensor:
        """The cameras' frames checked (each mistake named plainly) and fitted: B x N x 3 x size x size."""
        cameras = len(self.cameras)
        if isinstance(images, torch.Tensor):
            require(
                images.dim() == 5,
                f"images must be B x {cameras} x 3 x H x W, or one B x 3 x H x W tensor per camera "
                f"({', '.join(self.cameras)}), got shape {tuple(images.shape)}",
            )
            images = images.unbind(1)
        require(
            len(images) == cameras,
            f"images hold {len(images)} cameras; the policy observes {cameras}: {', '.join(self.cameras)}",
        )
        require(
            all(isinstance(frames, torch.Tensor) for frames in images),
            "images must be torch tensors (torch.from_numpy(frame).permute(2, 0, 1) wraps a camera's "
            "H x W x 3 array)",
        )
        batch = images[0].shape[0] if images[0].dim() else 0
        for key, frames in zip(self.cameras, images):
            require(
                frames.dim() == 4 and frames.shape[0] == batch and frames.shape[1] == 3,
                f"{key}: frames must be B x 3 x H x W with B = {batch} (the first camera's batch), "
                f"got shape {tuple(frames.shape)}",
            )
            require(
                frames.dtype == torch.uint8,
                f"{key}: frames must be uint8 (0-255, as cameras give them), got {frames.dtype}",
            )
            require(
                frames.shape[2] > 0 and frames.shape[3] > 0,
                f"{key}: frames are {frames.shape[2]} x {frames.shape[3]} pixels; give the camera's image",
            )
        size, fit = self.meta["model"]["image_size"], self.meta["model"]["image_fit"]
        return torch.stack([fit_square_chw(frames, size, fit) for frames in images], 1)

    def instruction_index(self, instruction: str) -> int | None:
        """The index of a trained instruction: this one, or the first the policy reads as the same
        words (case, spacing and punctuation aside: "Pick up the cube." is "pick up the cube");
        None if it was not trained on it."""
        require(isinstance(instruction, str), f"an instruction is a string, got {type(instruction).__name__}")
        if instruction in self.instructions:
            return self.instructions.index(instruction)
        words = self.model.tokenizer.encode(instruction)
        alike = [
            i for i, known in enumerate(self.instructions) if self.model.tokenizer.encode(known) == words
        ]
        return alike[0] if alike else None

    def task_id(self, instruction: str) -> int:
        """instruction_index, or an error naming the instructions the policy knows."""
        index = self.instruction_index(instruction)
        require(
            index is not None,
            f"the policy was not trained on the instruction '{instruction}' (it knows: {self.instructions})",
        )
        return index

    @torch.no_grad()
    def act(
        self,
        images_uint8: Frames,
        state: torch.Tensor,
        task_index: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Action chunks in the dataset's action units, B x H x A, from raw inputs as `observation`
        takes them; execute the first `n_action_steps` of each, then observe again. The flow head's
        noise is drawn on the CPU (from `generator`, when given), so a seed gives one chunk on any
        device; `noise` (B x H x A) gives it instead, so that a sample's chunk does not depend on
        the batch it came in.
        """
        self.model.eval()
        obs = self.observation(images_uint8, state, task_index)
        shape = (state.shape[0], self.chunk_size, self.action_dim)
        if noise is None:
            noise = torch.randn(shape, generator=generator)
        else:
            noise = self._checked_noise(noise, shape)
        if not shape[0]:  # no samples, no chunks (the model's attention cannot shape an empty batch)
            return torch.zeros(shape, device=self.device)
        return self.normalizer.unaction(self.model.predict(obs, noise.to(self.device)))

    @staticmethod
    def _checked_noise(noise: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """Given noise, a B x chunk x action float tensor of finite numbers, as float32."""
        given = noise.dtype if isinstance(noise, torch.Tensor) else type(noise).__name__
        require(
            isinstance(noise, torch.Tensor) and noise.is_floating_point(),
            f"noise must be a float tensor, got {given}",
        )
        require(
            noise.shape == shape,
            f"noise must be B x chunk x action ({shape[0]} x {shape[1]} x {shape[2]}), got {tuple(noise.shape)}",
        )
        require(
            bool(torch.isfinite(noise).all()), "noise holds a NaN or an infinity: every action would be NaN"
        )
        return noise.float()
