"""A probe's report.md and figure, from a probe.json written by hand."""

from __future__ import annotations

from leanvla.probe.report import FIGURE, markdown, write_report


def summary(executed: float, images: float | None = None) -> dict:
    swapped = (
        {"frames": 0}
        if images is None
        else {"frames": 10, "as_recorded": 0.1, "images": images, "state": 0.4}
    )
    return {
        "frames": 10,
        "first_action": 0.2,
        "executed": executed,
        "by_step": [0.1, 0.2, None],
        "by_dimension": [0.1, 0.3],
        "swapped": swapped,
    }


RESULT = {
    "policy": "/runs/p",
    "data": "/data/d",
    "protocol": {
        "every": 3,
        "frames": 20,
        "episodes": 4,
        "executed_steps": 2,
        "chunk_size": 3,
        "batch_size": 1,
        "seed": 7,
        "action_key": "action",
        "action_names": ["x", "grip"],
        "action_std": [0.5, 0.0],
    },
    "groups": {
        "training": {"episodes": [0, 1], "summary": {"all": summary(0.1, 0.2), "push": summary(0.1, 0.2)}},
        "held_out": {"episodes": [2, 3], "summary": {"all": summary(0.3), "push": summary(0.3)}},
    },
    "seconds": 1.0,
}


def test_the_report_states_its_protocol_and_each_group_new_demonstrations_first():
    text = markdown(RESULT)
    assert "20 frames (one frame in 3 of 4 episodes)" in text and "one frame per batch" in text
    assert text.index("## Demonstrations the policy was not trained on; 2 episodes") < text.index(
        "## The policy's training demonstrations: fit, not generalisation; 2 episodes"
    )
    # a task with one demonstration has no counterpart to swap in; the ratio is to the same frames' error
    assert (
        "| **all** | 10 | 0.2 | 0.3 | - (one demonstration of the task) | - (one demonstration of the task) |"
        in text
    )
    assert "| **all** | 10 | 0.2 | 0.1 | 0.2 (x2.00) | 0.4 (x4.00) |" in text
    assert "it is 2.00 times that; given that frame's state, 4.00 times" in text
    assert "| x | 0.1 | 0.5 | 0.200 |" in text and "| grip | 0.3 | 0 | - |" in text  # no spread: no ratio
    assert text.count("What it reads:") == 1  # the new demonstrations had no counterpart


def test_the_report_and_its_figure_are_written(tmp_path):
    write_report(tmp_path, RESULT)
    assert (tmp_path / "report.md").read_text() == markdown(RESULT)
    assert (tmp_path / FIGURE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_policy_without_error_gets_no_ratio_rather_than_a_division_by_zero():
    exact = summary(0.0, 0.0)
    exact["swapped"]["as_recorded"] = 0.0
    result = {**RESULT, "groups": {"training": {"episodes": [0], "summary": {"all": exact, "push": exact}}}}
    text = markdown(result)
    assert "| **all** | 10 | 0.2 | 0 | 0 | 0.4 |" in text and "What it reads:" not in text


def test_the_report_says_how_the_chunks_were_decoded_and_what_drew_on_the_seed():
    from leanvla.probe.report import decoding

    def said(**protocol) -> str:
        return decoding({"seed": 7, **protocol})

    assert said() == "The policy is deterministic: it draws no noise"
    assert said(flow={"flow_steps": 10, "flow_noise": 1.0}).endswith(
        "drawn per frame from seed 7, the same in every probe of the frame"
    )
    assert "seed 7, scaled by 0.5" in said(flow={"flow_steps": 10, "flow_noise": 0.5})
    assert said(flow={"flow_steps": 10, "flow_noise": 0.0}) == (
        "The flow head integrated 10 Euler steps from zero noise (deterministic)"
    )
    bidirectional = dict(
        decoder="bidirectional", decode_iterations=4, forward_passes_per_chunk=4.0, tokens_per_pass=8.0
    )
    assert "seed" not in said(decode={**bidirectional, "decode_order": "confidence"})
    assert "4 iterations in random order (drawn per frame from seed 7): 4.0 forward passes" in said(
        decode={**bidirectional, "decode_order": "random"}
    )
    fast = dict(decoder="fast", token_block=8, commit_threshold=0.9, activation_threshold=0.5)
    assert said(decode={**fast, "forward_passes_per_chunk": 12.5, "tokens_per_pass": 2.56}) == (
        "The discrete head decoded with Fast-dVLA (fast), blocks of 8 tokens, commit threshold 0.9, "
        "activation threshold 0.5: 12.5 forward passes of the action expert per chunk, 2.6 tokens per pass"
    )
