import pytest

from leanvla.errors import UserError
from leanvla.option_lists import listed, parse_groups


def test_the_names_in_order_without_blanks():
    assert listed(" backbone, ,expert,", "--stacks") == ["backbone", "expert"]
    assert listed("", "--stacks") == [] and listed(" , ", "--stacks") == []


def test_a_name_given_twice_is_refused_naming_it():
    with pytest.raises(UserError, match="^--cameras names 'corner2' twice; give each once$"):
        listed("corner2, topview,corner2 ", "--cameras")


def test_values_per_name_of_the_kind_asked():
    assert parse_groups("vision=64, expert=16", "--lora.group-rank", int) == {"vision": 64, "expert": 16}
    assert parse_groups("backbone=0.5", "--group-scale", float) == {"backbone": 0.5}
    assert parse_groups("", "--group-scale", float) == {}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("expert=1,expert=2", "--keep names 'expert' twice; give each once"),  # the last one won
        ("expert", "--keep item 'expert' must look like stack=value"),
        ("expert=half", "--keep value 'half' for 'expert' is not a float"),
    ],
)
def test_a_value_list_that_cannot_be_read_is_refused(spec, message):
    with pytest.raises(UserError, match=f"^{message}$"):
        parse_groups(spec, "--keep", float)
