"""A probe's report.md and probe.png, from its probe.json alone."""

from __future__ import annotations

from pathlib import Path

from leanvla.probe.summary import swap_ratios

FIGURE = "probe.png"
GROUPS = {  # probe.json's groups, as the report heads them
    "held_out": "Demonstrations the policy was not trained on",
    "training": "The policy's training demonstrations: fit, not generalisation",
}
CAVEAT = (
    "Open-loop errors follow the demonstrator's states, and a policy in closed loop reaches states "
    "no demonstration shows: a lower error here did not mean more success in Meta-World "
    "(docs/RESULTS.md, MT10: the reference VLA erred less than a plain CNN on new demonstrations, "
    "read its images far less, and succeeded 15 points less often). Read the swaps as what the "
    "policy uses, and compare errors between policies on the same frames only."
)


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def swap_cell(swapped: dict, name: str) -> str:
    """An error with an input swapped, and how many times the same frames' own error it is."""
    if not swapped["frames"]:
        return "- (one demonstration of the task)"
    ratio = swap_ratios(swapped)[name]
    return number(swapped[name]) if ratio is None else f"{number(swapped[name])} (x{ratio:.2f})"


def group_section(title: str, group: dict, protocol: dict) -> list[str]:
    executed = protocol["executed_steps"]
    summary = group["summary"]
    lines = [
        f"## {title}; {len(group['episodes'])} episodes",
        "",
        f"| task | frames | first action | executed steps (1-{executed}) | images from another demonstration "
        "| state from another demonstration |",
        "|---|---|---|---|---|---|",
    ]
    for task, s in summary.items():
        label = f"**{task}**" if task == "all" else task
        lines.append(
            f"| {label} | {s['frames']} | {number(s['first_action'])} | {number(s['executed'])} "
            f"| {swap_cell(s['swapped'], 'images')} | {swap_cell(s['swapped'], 'state')} |"
        )
    overall = summary["all"]["swapped"]
    ratios = swap_ratios(overall)
    if ratios["images"] is not None:
        lines += [
            "",
            f"What it reads: on the {overall['frames']} frames whose task has another demonstration, "
            f"the executed-step error is {number(overall['as_recorded'])}. Given the images of the frame "
            "at the same point of the task's next demonstration instead of its own, it is "
            f"{ratios['images']:.2f} times that; given that frame's state, "
            f"{ratios['state']:.2f} times. Near 1: the policy does not read "
            "that input.",
        ]
    lines += [
        "",
        "| action dimension | error, executed steps | std in training | error / std |",
        "|---|---|---|---|",
    ]
    for name, error, std in zip(
        protocol["action_names"], summary["all"]["by_dimension"], protocol["action_std"], strict=True
    ):
        ratio = "-" if error is None or std == 0 else f"{error / std:.3f}"
        lines.append(f"| {name} | {number(error)} | {number(std)} | {ratio} |")
    return [*lines, ""]


def batching(batch_size: int) -> str:
    if batch_size == 1:
        return "one frame per batch"
    return f"{batch_size} frames per batch"


def decoding(protocol: dict) -> str:
    """How the chunks were decoded, and what they drew from the seed."""
    seed = protocol["seed"]
    if "flow" in protocol:
        flow = protocol["flow"]
        if flow["flow_noise"] == 0:
            return (
                f"The flow head integrated {flow['flow_steps']} Euler steps from zero noise (deterministic)"
            )
        scale = "" if flow["flow_noise"] == 1 else f", scaled by {flow['flow_noise']:g}"
        return (
            f"The flow head integrated {flow['flow_steps']} Euler steps from noise drawn per frame from "
            f"seed {seed}{scale}, the same in every probe of the frame"
        )
    if "decode" in protocol:
        d = protocol["decode"]
        if d["decoder"] == "bidirectional":
            how = f"mask-predict, {d['decode_iterations']} iterations in {d['decode_order']} order"
            if d["decode_order"] == "random":
                how += f" (drawn per frame from seed {seed})"
        else:
            how = (
                f"Fast-dVLA ({d['decoder']}), blocks of {d['token_block']} tokens, commit threshold "
                f"{d['commit_threshold']:g}, activation threshold {d['activation_threshold']:g}"
            )
        return (
            f"The discrete head decoded with {how}: {d['forward_passes_per_chunk']:.1f} forward passes of "
            f"the action expert per chunk, {d['tokens_per_pass']:.1f} tokens per pass"
        )
    return "The policy is deterministic: it draws no noise"


def markdown(result: dict) -> str:
    p = result["protocol"]
    stride = "every frame" if p["every"] == 1 else f"one frame in {p['every']}"
    lines = [
        f"# Probe: {result['policy']}",
        "",
        f"On {result['data']}: {p['frames']} frames ({stride} of {p['episodes']} episodes). Each frame's "
        f"observation went through the policy as in closed loop, and its chunk of {p['chunk_size']} actions "
        "was compared with what the demonstration did next (steps past its end are not compared). Errors "
        f"are mean |predicted - demonstrated| in the dataset's units ('{p['action_key']}'), over frames and "
        f"action dimensions: the first action, and the first {p['executed_steps']} steps the policy executes "
        f"before it observes again. {decoding(p)}; {batching(p['batch_size'])}.",
        "",
    ]
    for key, title in GROUPS.items():
        if key in result["groups"]:
            lines += group_section(title, result["groups"][key], p)
    lines += [f"![errors by chunk step, and with an input swapped]({FIGURE})", "", CAVEAT, ""]
    return "\n".join(lines)


def plot(result: dict, out: Path) -> None:
    """Left: the error at each chunk step, per group; right: each task's executed-step error as
    recorded and with each input swapped (the first group the probe has)."""
    import numpy as np

    from leanvla.report import pyplot, save_figure

    plt = pyplot()
    p = result["protocol"]
    fig, (steps, swaps) = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("held_out", "-"), ("training", "--")):
        if key in result["groups"]:
            by_step = [np.nan if v is None else v for v in result["groups"][key]["summary"]["all"]["by_step"]]
            steps.plot(
                np.arange(1, len(by_step) + 1),
                by_step,
                style,
                marker="o",
                ms=3,
                label=GROUPS[key].split(" (")[0],
            )
    steps.axvspan(0.5, p["executed_steps"] + 0.5, color="0.9", label="executed before observing again")
    steps.set_xlabel("chunk step")
    steps.set_ylabel("mean |predicted - demonstrated|")
    steps.set_title("Error along the chunk")
    steps.legend(fontsize=7)
    steps.grid(alpha=0.3)

    group = result["groups"].get("held_out") or result["groups"]["training"]
    tasks = [t for t, s in group["summary"].items() if s["swapped"]["frames"]]
    x = np.arange(len(tasks))
    width = 0.27
    for i, (key, label) in enumerate(
        (("as_recorded", "as recorded"), ("images", "images swapped"), ("state", "state swapped"))
    ):
        swaps.bar(
            x + (i - 1) * width, [group["summary"][t]["swapped"][key] for t in tasks], width, label=label
        )
    swaps.set_xticks(x, tasks, rotation=30, ha="right", fontsize=7)
    swaps.set_ylabel(f"error over the first {p['executed_steps']} steps")
    swaps.set_title("What it reads: one input from another demonstration")
    swaps.set_ylim(0, 1.3 * swaps.get_ylim()[1])  # room for the legend above the bars
    swaps.legend(fontsize=7, ncol=3, loc="upper center")
    save_figure(fig, out)


def write_report(directory: Path, result: dict) -> None:
    (directory / "report.md").write_text(markdown(result), encoding="utf-8")
    plot(result, directory / FIGURE)
