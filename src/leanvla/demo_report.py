"""The sections of `leanvla demo`'s report.md: the base policy, then one section per stage, each
read back from what that stage wrote into the demo's output directory."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from leanvla.readable_json import readable_json

if TYPE_CHECKING:
    from leanvla.demo import DemoConfig, DemoPlan


def report_markdown(
    cfg: DemoConfig,
    plan: DemoPlan,
    data: Path,
    result: dict,
    timings: dict[str, float],
    has_strips: bool,
    sections: list[str],
) -> str:
    """The whole report: the data, the base policy and its closed-loop success, the stages'
    sections, the time per stage and the settings."""
    from leanvla.data.reader import LeRobotDataset
    from leanvla.environment import describe, software_environment
    from leanvla.models.checkpoint import load_model
    from leanvla.report import pct, protocol_line, success_table

    ds = LeRobotDataset(data)
    model, meta, _, _ = load_model(Path(cfg.out) / "base")
    lines = [
        "# leanvla demo report",
        "",
        f"Command: `leanvla demo{' --quick' if cfg.quick else ''} --seed {cfg.seed}`"
        + (" (quick mode: tiny settings, numbers mean nothing)" if cfg.quick else ""),
        "",
        "## Data",
        f"{ds.num_episodes} scripted-expert demonstrations ({ds.num_frames} frames) of {len(ds.tasks)} tasks, "
        f"cameras {plan.cameras} at {plan.image_size} px, recorded into `{data}` (LeRobotDataset v3.0).",
        "",
        "## Base policy",
        f"Reference VLA, size `{plan.size}` ({model.num_parameters() / 1e6:.2f}M parameters), flow-matching head, "
        f"chunk {meta['model']['chunk_size']} (executing {meta['model']['n_action_steps']}), {plan.steps} "
        f"steps at batch {plan.batch_size}.",
        "",
        "![loss](loss.png)",
        "",
        "## Closed-loop success",
        protocol_line(result),
        "",
        success_table({"base policy": result}),
        f"Mean success: **{pct(result['mean_success'])}%**; inference "
        f"{result['inference_ms_per_chunk']:.1f} ms per chunk on this CPU.",
        "",
    ]
    if has_strips:
        lines += ["One rollout per task (first row frame = start):", "", "![rollouts](rollouts.png)", ""]
    lines += sections
    lines += ["## Time per stage", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.0f} |" for name, sec in timings.items()]
    lines += ["", f"On: {describe(software_environment())}."]
    lines += ["", "## Settings", "", "```json", readable_json(asdict(plan)), "```", ""]
    return "\n".join(lines)


def probe_section(probed: Path) -> str:
    from leanvla.probe.run import RESULT
    from leanvla.probe.summary import swap_ratios

    result = json.loads((probed / RESULT).read_text(encoding="utf-8"))
    protocol = result["protocol"]
    group = result["groups"].get("training") or result["groups"]["held_out"]
    overall = group["summary"]["all"]
    ratios = swap_ratios(overall["swapped"])
    lines = [
        "## What the base policy reads (`leanvla probe`)",
        "",
        f"On one frame in {protocol['every']} of the demonstrations ({overall['frames']} frames), the base "
        f"policy's chunks miss what the demonstrator did next by {overall['executed']:.4f} on average over the "
        f"{protocol['executed_steps']} steps it executes (mean |predicted - demonstrated|, actions in [-1, 1]).",
    ]
    if ratios["images"] is not None:
        lines[-1] += (
            f" Given the images of the frame at the same point of the task's next demonstration, that error is "
            f"{ratios['images']:.2f} times as large; given its state, "
            f"{ratios['state']:.2f} times. Near 1 would mean an input the policy does "
            "not use."
        )
    lines += [
        "",
        "These are its training demonstrations, so the errors measure fit; on a robot, `leanvla probe` "
        "does the same on recordings the policy has not seen, without a simulator. Full report: "
        "`probe/report.md`.",
        "",
        "![probe](probe/probe.png)",
        "",
    ]
    return "\n".join(lines)


def curate_section(plan: DemoPlan, curated: Path) -> str:
    from leanvla.curate.report import seconds, task_table
    from leanvla.curate.run import SCORES, TIMING, read_scores

    timing = json.loads((curated / TIMING).read_text(encoding="utf-8"))
    scores = read_scores(curated / SCORES)
    lines = [
        "## Curate (ATHENA)",
        "",
        f"`leanvla curate` scored {timing['demonstrations']} demonstrations by their influence on each task's "
        f"validation loss ({timing['validation']} held-out demonstrations), with Kronecker-projected gradients "
        f"(P = {timing['dim']}, {plan.curate_frames} frames per demonstration) and the {timing['curvature']} inverse "
        f"curvature, and kept {plan.curate_fraction:.0%} with a per-task floor "
        f"({seconds(timing, 'collect_s'):.0f} s collecting gradients). "
        "Its full report, with the best and worst demonstrations, is `curated/report.md`; training on the "
        "selection against all data and a random half is `benchmarks/curate.py`.",
        "",
        *task_table(
            [r["task"] for r in scores], [r["score"] for r in scores], [r["selected"] for r in scores]
        ),
        "",
        "![scores per task](curated/scores_per_task.png)",
        "",
    ]
    return "\n".join(lines)


def prune_section(plan: DemoPlan, out: Path, base: dict, pruned: dict) -> str:
    from leanvla.models.checkpoint import read_meta
    from leanvla.prune.run import REPORT
    from leanvla.report import success_table

    report = json.loads((out / "pruned" / REPORT).read_text(encoding="utf-8"))
    layers = lambda m: f"{m['layers']} + {m['expert_layers']}"  # noqa: E731
    base_model = read_meta(out / "base" / "policy")["model"]
    pruned_model = read_meta(out / "pruned")["model"]
    params = report["parameters"]
    lines = [
        "## Prune (CLP)",
        "",
        f"`leanvla prune --keep {plan.prune_keep}` removed the layers whose output is most like their input "
        f"(linear CKA over {report['calibration']['samples']} calibration frames): backbone layers "
        f"{report['stacks']['backbone']['removed']}, expert layers {report['stacks']['expert']['removed']} (0-based). "
        f"The pruned policy was then fine-tuned for {plan.prune_steps} steps on the same data. "
        "A side-by-side comparison with other criteria and equal budgets is `benchmarks/prune.py`.",
        "",
        "| | base | pruned + fine-tuned |",
        "|---|---|---|",
        f"| backbone + expert layers | {layers(base_model)} | {layers(pruned_model)} |",
        f"| parameters | {params['before'] / 1e6:.2f}M | {params['after'] / 1e6:.2f}M |",
        f"| inference ms per chunk | {base['inference_ms_per_chunk']:.1f} | {pruned['inference_ms_per_chunk']:.1f} |",
        "",
        success_table({"base": base, "pruned + fine-tuned": pruned}),
        "![backbone CKA](pruned/cka_backbone.png) ![expert CKA](pruned/cka_expert.png)",
        "",
    ]
    return "\n".join(lines)


def adapt_section(plan: DemoPlan, out: Path, adapted: dict) -> str:
    from leanvla.adapt.inject import trainable_parameters
    from leanvla.models.checkpoint import load_model
    from leanvla.report import read_metrics, success_table

    model = load_model(out / "adapted")[0]
    total = sum(p.numel() for p in model.parameters())
    last = read_metrics(out / "adapted" / "metrics.jsonl")[-1]
    lines = [
        "## Adapt (LoRA-SP)",
        "",
        f"The base policy, frozen, adapted to tasks it never saw ({plan.adapt_tasks.replace(',', ', ')}; "
        f"{plan.adapt_episodes} demonstrations each) with LoRA-SP on every backbone and expert Linear, and its "
        "input and output modules trained in full (`--lora.train-io`): a bank of "
        f"{plan.adapt_rank} vectors per layer, eta {plan.adapt_eta}, {plan.adapt_steps} steps. Trainable parameters: "
        f"{trainable_parameters(model) / 1e3:.0f}k of {total / 1e6:.2f}M; mean active rank at the end "
        f"{last['active_rank']:.1f} of {plan.adapt_rank}. The adapter is saved apart from the base "
        "(`adapted/policy/adapter.safetensors`); `leanvla export` folds it into plain weights. LoRA and full "
        "fine-tuning side by side: `benchmarks/adapt.py`.",
        "",
        success_table({"LoRA-SP adapted": adapted}),
        "![active rank](adapted/active_rank.png)",
        "",
    ]
    return "\n".join(lines)


def merge_section(plan: DemoPlan, out: Path, base: dict, merged: dict) -> str:
    from leanvla.merge.run import REPORT, undone_percent, update_along_vector
    from leanvla.report import read_metrics, success_table

    report = json.loads((out / "meta" / REPORT).read_text(encoding="utf-8"))
    kept = update_along_vector(out / "meta", out / "merged_ft")
    rate = lambda run: read_metrics(out / run / "metrics.jsonl")[-1]["samples_per_s"]  # noqa: E731
    cosine = report["cosines"]["sft - base vs aux - base"]["per_group"]
    lines = [
        "## Merge (CapVector)",
        "",
        f"A capability vector from a small task set ({plan.adapt_tasks.replace(',', ', ')}): the base fine-tuned "
        f"{plan.merge_vector_steps} steps plainly and {plan.merge_vector_steps} steps with the auxiliary objective "
        f"(future image features + state {plan.merge_aux_horizon} frames ahead); tau = aux - plain, norm "
        f"{report['vector_norm']:.3f}. `leanvla merge` added it to the base (lambda {report['scale']:g}); the meta "
        f"model was then fine-tuned {plan.merge_steps} steps on the base's tasks with plain SFT and the orthogonal "
        "penalty against tau. Cosine between the plain and the auxiliary updates, per group: "
        + ", ".join(f"{g} {c:.2f}" for g, c in cosine.items())
        + f". The fine-tune undid {undone_percent(kept):.1f}% of the merged vector; its "
        f"update's squared cosine with tau per matrix averages {kept['mean_squared_cosine']:.1e} (a random "
        f"direction's: {kept['random_squared_cosine']:.1e}), which is what the penalty holds down.",
        "",
        "| run | training samples/s |",
        "|---|---|",
        f"| plain SFT (vector set) | {rate('vector_sft'):.0f} |",
        f"| auxiliary objective (vector set) | {rate('vector_aux'):.0f} |",
        f"| meta model + SFT + orthogonal penalty | {rate('merged_ft'):.0f} |",
        "",
        success_table({"base": base, "meta + SFT + orth": merged}),
        "![vector norms](meta/vector_norms.png)",
        "",
        "The side-by-side comparison with plain and auxiliary fine-tuning on tasks the vector never saw is "
        "`benchmarks/merge.py`.",
        "",
    ]
    return "\n".join(lines)


def decode_section(plan: DemoPlan, base: dict, fast: dict) -> str:
    from leanvla.report import success_table

    stats = fast["decode"]  # the settings the evaluation ran with, not the ones asked for
    threshold = stats["commit_threshold"]
    lines = [
        "## Decode (Fast-dVLA)",
        "",
        f"The base's model shape with a discrete action head (each action dimension binned into {plan.decode_vocab} "
        "tokens, masked-token objective), "
        f"trained {plan.decode_steps} steps with block-causal attention over blocks of {stats['token_block']} tokens "
        f"and noise rising along the chunk, evaluated with the {stats['decoder']} decoder (Fast-dVLA): the prefix "
        "and finished blocks served from a KV cache, blocks decoded in a pipeline, tokens committed at "
        f"confidence >= {threshold:g}"
        + (
            f" (under 1/{plan.decode_vocab}: every token of a block commits in the block's first pass)."
            if threshold < 1 / plan.decode_vocab
            else "."
        ),
        "",
        "| policy | ms per chunk | forward passes per chunk | tokens per pass |",
        "|---|---|---|---|",
        f"| flow head, 10 Euler steps (base) | {base['inference_ms_per_chunk']:.1f} | 10 | |",
        f"| discrete head, Fast-dVLA decoder | {fast['inference_ms_per_chunk']:.1f} | "
        f"{stats['forward_passes_per_chunk']:.1f} | {stats['tokens_per_pass']:.1f} |",
        "",
        success_table({"discrete head, Fast-dVLA": fast}),
        "Bidirectional mask-predict decoding and a threshold sweep, side by side: `benchmarks/decode.py`.",
        "",
    ]
    return "\n".join(lines)
