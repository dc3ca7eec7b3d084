"""What the auxiliary pixel decoder learned: held-out frames `horizon` ahead against their
reconstructions, from a `merge.py --aux-pixels` work directory's auxiliary fine-tuning (b).

    python benchmarks/aux_reconstruction.py --work outputs/bench/merge_pixels --name merge_pixels_reconstruction

Reads (b)'s checkpoint and DEMO5's validation episodes (each task's last 5 demonstrations, never
trained on). Writes docs/results/NAME.md, the decoder's pixel error over every validation frame
beside two predictors that know nothing of the future: the frame at t itself (nothing moves) and
its task's mean validation frame; and NAME.png, per task the frame at t, the one `horizon` frames later
and the decoded one. Errors are in the objective's units (the encoder's normalised pixels).
"""

from __future__ import annotations

import json

from common import RESULTS, command_line, finished_work_parser, shown, slug, write_result
from merge import AUX_ROW  # the row whose checkpoint carries the trained decoder


def main() -> None:
    parser = finished_work_parser(
        __doc__, "merge_pixels_reconstruction", "a finished benchmarks/merge.py --aux-pixels work directory"
    )
    parser.add_argument("--batch", type=int, default=64, help="frames decoded at once")
    args = parser.parse_args()
    done = args.work / "results.json"
    results = json.loads(done.read_text()) if done.is_file() else {}
    if "the future frame's pixels" not in results.get("aux_objective", "") or AUX_ROW not in results:
        parser.error(f"{shown(args.work)} holds no finished (b) row of a merge.py --aux-pixels run")

    import torch

    from leanvla.data.reader import LeRobotDataset
    from leanvla.data.samples import ChunkDataset
    from leanvla.models.auxiliary import future_rows, per_sample_mse
    from leanvla.models.checkpoint import load_policy
    from leanvla.report import pyplot, save_figure

    torch.set_num_threads(2)
    run = args.work / "runs" / slug(AUX_ROW)  # where merge.py trained it
    policy = load_policy(run)
    model, horizon = policy.model, policy.meta["model"]["aux_horizon"]
    data = json.loads((run / "train_config.json").read_text())["data"]  # the recording (b) trained on
    val = json.loads((args.work / "val_episodes.json").read_text())["episodes"]
    frames = ChunkDataset(LeRobotDataset(data), policy.cameras, policy.chunk_size, episodes=val)
    tasks = torch.tensor([policy.task_id(text) for text in frames.instructions])[frames.task_index]

    decoded_error, still_error, now, ahead, decoded = [], [], [], [], []
    with torch.no_grad():
        for lo in range(0, len(frames), args.batch):
            rows = torch.arange(lo, min(lo + args.batch, len(frames)))
            obs = policy.observation(frames.images(rows), frames.state[rows], tasks[rows])
            target = policy.normalizer.images(frames.images(future_rows(rows, frames.episode_end, horizon)))
            pixels = model.aux_head(model.prefix_of(obs).summary).pixels
            decoded_error.append(per_sample_mse(pixels, target))
            still_error.append(per_sample_mse(obs.images, target))
            now.append(obs.images)
            ahead.append(target)
            decoded.append(pixels)
    now, ahead, decoded = torch.cat(now), torch.cat(ahead), torch.cat(decoded)
    task_mean = torch.stack([ahead[frames.task_index == i].mean(0) for i in range(len(frames.instructions))])
    mean_error = per_sample_mse(task_mean[frames.task_index], ahead)
    decoded_error, still_error = torch.cat(decoded_error), torch.cat(still_error)

    # per task, the validation frame where the scene changes most over the horizon
    plt = pyplot()
    names = frames.instructions
    fig, axes = plt.subplots(3, len(names), figsize=(2.2 * len(names), 6.8))

    def shown_rgb(image: torch.Tensor) -> torch.Tensor:  # normalised first-camera image -> RGB in [0, 1]
        return (image * policy.normalizer.image_std[0] + policy.normalizer.image_mean[0]).clamp(0, 1)

    for column, name in enumerate(names):
        rows = (frames.task_index == column).nonzero().flatten()
        row = rows[still_error[rows].argmax()]
        for line, (label, images) in enumerate(
            [("at t", now), (f"at t + {horizon}", ahead), ("decoded", decoded)]
        ):
            axis = axes[line, column]
            axis.imshow(shown_rgb(images[row, 0]).permute(1, 2, 0).numpy())
            axis.set_xticks([]), axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(label)
        axes[0, column].set_title(name, fontsize=8)
    fig.suptitle(
        f"the auxiliary decoder on held-out demonstrations (camera {policy.cameras[0]})", fontsize=10
    )
    figure = RESULTS / f"{args.name}.png"
    save_figure(fig, figure)

    lines = [
        "# The auxiliary pixel decoder on held-out frames",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Checkpoint: (b) of {shown(args.work)} (the auxiliary fine-tuning, {horizon} frames ahead). "
        f"Frames: DEMO5's {len(val)} validation episodes, {len(frames)} frames, never trained on. "
        "Mean squared error per frame in the encoder's normalised pixel units, averaged over the frames:",
        "",
        "| predictor of the frame at t + horizon | pixel error | against the mean frame's |",
        "|---|---|---|",
    ]
    base = float(mean_error.mean())
    for label, error in [
        ("the decoder, from the backbone's summary at t", decoded_error),
        ("the frame at t itself (nothing moves)", still_error),
        ("its task's mean validation frame", mean_error),
    ]:
        lines.append(f"| {label} | {float(error.mean()):.4f} | {float(error.mean()) / base:.2f} |")
    lines += ["", f"![frames at t, at t + {horizon}, decoded]({figure.name})"]
    write_result(f"{args.name}.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
