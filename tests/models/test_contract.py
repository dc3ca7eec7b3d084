from dataclasses import fields

from leanvla.models.cnn_policy import CNNConfig
from leanvla.models.config import vla_config
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
