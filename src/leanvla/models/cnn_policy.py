"""The plain baseline: a small CNN behaviour-cloning policy (image + proprio + task id -> chunk).

No language model, no transformer, no generative head: conv features of each camera, the state and
a learned task embedding go through an MLP that regresses the whole action chunk (MSE). It answers
whether the VLA architecture earns its cost on the same data and compute budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from leanvla.models.contract import DataContract
from leanvla.models.policy import Observation
from leanvla.models.tokenizer import InstructionTokenizer


@dataclass
class CNNConfig(DataContract):
    num_tasks: int = 1
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    hidden: int = 512

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CNNConfig:
        return cls(**d)


class CNNPolicy(nn.Module):
    def __init__(self, cfg: CNNConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = InstructionTokenizer()  # unused by the model; keeps the Policy interface uniform
        layers, c_in = [], 3
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(min(8, c), c), nn.ReLU()]
            c_in = c
        self.encoder = nn.Sequential(*layers)
        grid = cfg.image_size // 2 ** len(cfg.channels)
        feat = cfg.channels[-1] * grid * grid
        self.image_proj = nn.Linear(feat, 256)
        self.task_embed = nn.Embedding(cfg.num_tasks, 64)
        self.state_proj = nn.Linear(cfg.state_dim, 64)
        d_in = 256 * len(cfg.cameras) + 128
        self.mlp = nn.Sequential(
            nn.Linear(d_in, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.chunk_size * cfg.action_dim),
        )

    def forward(self, obs: Observation) -> torch.Tensor:
        b, n = obs.images.shape[:2]
        f = self.encoder(obs.images.flatten(0, 1)).flatten(1)  # (B*N) x C*g*g
        f = self.image_proj(f).view(b, n * 256)
        x = torch.cat([f, self.state_proj(obs.state), self.task_embed(obs.task_index)], dim=-1)
        return self.mlp(x).view(b, self.cfg.chunk_size, self.cfg.action_dim)

    def action_error(
        self, obs: Observation, actions: torch.Tensor, noise: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        return (self(obs) - actions).pow(2).mean(-1)

    @torch.no_grad()
    def predict(self, obs: Observation, noise: torch.Tensor) -> torch.Tensor:
        return self(obs)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
