import re
from dataclasses import fields

import pytest

from leanvla.errors import UserError
from leanvla.models.cnn_policy import CNNConfig
from leanvla.models.config import VLAConfig, vla_config
from leanvla.models.contract import DataContract

CONTRACT = [f.name for f in fields(DataContract)]


def test_every_policy_config_starts_with_the_data_contract():
    for config in (vla_config("tiny"), CNNConfig()):
        assert list(config.to_dict())[: len(CONTRACT)] == CONTRACT


def test_the_contract_round_trips_through_a_checkpoint_config():
    contract = dict(
        cameras=["observation.images.a", "observation.images.b"],
        image_size=32,
        image_fit="crop",
        state_dim=7,
        action_dim=6,
        chunk_size=10,
        n_action_steps=5,
    )
    for config in (vla_config("tiny", **contract), CNNConfig(**contract)):
        again = type(config).from_dict(config.to_dict())
        assert again == config
        assert {name: getattr(again, name) for name in CONTRACT} == contract


def test_values_of_the_wrong_kind_or_a_missing_contract_field_are_one_clear_error():
    good = vla_config("tiny").to_dict()
    VLAConfig.check_values(good, "cfg")  # what leanvla writes passes
    VLAConfig.check_values({**good, "mlp_ratio": 3, "expert_to_backbone": None}, "cfg")  # an int is a float
    CNNConfig.check_values(CNNConfig().to_dict(), "cfg")
    for name, value, message in (
        ("chunk_size", "8", "cfg: 'chunk_size' must be int, got \"8\""),
        ("chunk_size", 8.0, "cfg: 'chunk_size' must be int, got 8.0"),
        ("chunk_size", True, "cfg: 'chunk_size' must be int, got true"),  # Python's bool is an int
        ("mlp_ratio", True, "cfg: 'mlp_ratio' must be float, got true"),
        ("vision_flat_token", 1, "cfg: 'vision_flat_token' must be bool, got 1"),
        (
            "cameras",
            ["observation.images.a", 1],
            "cfg: 'cameras' must be list[str], got [\"observation.images.a\", 1]",
        ),
        (
            "expert_to_backbone",
            [0, "1"],
            "cfg: 'expert_to_backbone' must be list[int] | None, got [0, \"1\"]",
        ),
        ("head", None, "cfg: 'head' must be str, got null"),
    ):
        with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
            VLAConfig.check_values({**good, name: value}, "cfg")
    without_state = {k: v for k, v in good.items() if k != "state_dim"}
    with pytest.raises(
        UserError, match="^cfg has no 'state_dim'; every policy's config records what it observes$"
    ):
        VLAConfig.check_values(without_state, "cfg")
    with pytest.raises(UserError, match="^cfg: 'hidden' must be int, got 1.5$"):
        CNNConfig.check_values({**CNNConfig().to_dict(), "hidden": 1.5}, "cfg")
