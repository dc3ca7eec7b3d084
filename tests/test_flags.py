from dataclasses import dataclass, field
from pathlib import Path

from leanvla.adapt.config import LoRAOptions
from leanvla.flags import set_flags


def test_the_changed_options_and_the_typed_ones_in_field_order():
    options = LoRAOptions(eta=0.8, train_io=False)
    assert set_flags(options, prefix="--lora.") == {"train_io": "--lora.no-train-io", "eta": "--lora.eta"}
    typed = ["--data", "d", "--lora.rank", "--lora.eta_start=1.0", "--lora.no-train-io", "--lora.nonsense"]
    assert set_flags(options, typed, "--lora.") == {
        "rank": "--lora.rank",
        "train_io": "--lora.no-train-io",
        "eta": "--lora.eta",
        "eta_start": "--lora.eta_start",
    }
    assert set_flags(LoRAOptions(), ["--steps", "--lora.train-io"], "--lora.") == {
        "train_io": "--lora.train-io"
    }
    # a value spelt like a field (`--run-name rank`) is not that field's flag
    assert set_flags(LoRAOptions(), ["--run-name", "rank", "eta"], "--lora.") == {}


@dataclass
class _Command:
    out: Path
    tags: list = field(default_factory=list)
    overwrite: bool = False


def test_a_required_option_counts_only_when_typed_and_a_factory_default_is_compared():
    assert set_flags(_Command(Path("x"))) == {}
    assert set_flags(_Command(Path("x"), tags=["a"])) == {"tags": "--tags"}
    assert set_flags(_Command(Path("x")), ["--out", "x", "--no-overwrite", "--lora.rank"]) == {
        "out": "--out",
        "overwrite": "--no-overwrite",
    }
