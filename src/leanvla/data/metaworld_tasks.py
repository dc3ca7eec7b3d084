"""Meta-World v3 task names, benchmark suites, and the instruction each task is recorded with.

Meta-World has no language; a VLA needs an instruction per task. The three tasks in LeRobot's
fixture use the same wording here, so datasets recorded by leanvla and by LeRobot agree.
"""

from __future__ import annotations

from leanvla.errors import UserError

INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "put the ring on the peg",
    "basketball-v3": "dunk the ball into the basket",
    "bin-picking-v3": "move the block from one bin to the other",
    "box-close-v3": "put the lid on the box",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "press the button from the top behind the wall",
    "button-press-v3": "press the button from the front",
    "button-press-wall-v3": "press the button behind the wall",
    "coffee-button-v3": "push the button on the coffee machine",
    "coffee-pull-v3": "pull the mug from the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "rotate the dial",
    "disassemble-v3": "pick the ring off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door by turning the lock",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door by turning the lock",
    "drawer-close-v3": "close the drawer",
    "drawer-open-v3": "open the drawer",
    "faucet-close-v3": "turn the faucet handle to close",
    "faucet-open-v3": "turn the faucet handle to open",
    "hammer-v3": "hammer the nail into the wall",
    "hand-insert-v3": "insert the gripper into the hole",
    "handle-press-side-v3": "press the handle down sideways",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up sideways",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever down",
    "peg-insert-side-v3": "insert the peg sideways into the hole",
    "peg-unplug-side-v3": "unplug the peg sideways",
    "pick-out-of-hole-v3": "pick the block out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "pick-place-wall-v3": "pick up the puck and place it at the goal behind the wall",
    "plate-slide-back-side-v3": "slide the plate back sideways into the cabinet",
    "plate-slide-back-v3": "slide the plate back into the cabinet",
    "plate-slide-side-v3": "slide the plate sideways into the cabinet",
    "plate-slide-v3": "slide the plate into the cabinet",
    "push-back-v3": "push the puck back to the goal",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck to the goal behind the wall",
    "reach-v3": "reach the goal position",
    "reach-wall-v3": "reach the goal position behind the wall",
    "shelf-place-v3": "place the puck on the shelf",
    "soccer-v3": "kick the ball into the goal",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "stick-push-v3": "grasp the stick and push the box with it",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-close-v3": "slide the window closed",
    "window-open-v3": "slide the window open",
}

MT10 = [
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
    "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
]  # fmt: skip
ML45_TEST = ["bin-picking-v3", "box-close-v3", "hand-insert-v3", "door-lock-v3", "door-unlock-v3"]
MT50 = sorted(INSTRUCTIONS)
ML45_TRAIN = [t for t in MT50 if t not in ML45_TEST]
# The five tasks of the plain-CNN reference number in the foundation issue; leanvla's demo default.
DEMO5 = ["reach-v3", "drawer-close-v3", "button-press-topdown-v3", "door-open-v3", "window-open-v3"]

SUITES: dict[str, list[str]] = {
    "MT10": MT10,
    "MT50": MT50,
    "ML45-train": ML45_TRAIN,
    "ML45-test": ML45_TEST,
    "DEMO5": DEMO5,
}


def resolve_tasks(spec: str | list[str]) -> list[str]:
    """'reach-v3,MT10' -> task names, in order, without repeats; unknown names are a UserError."""
    items = spec.split(",") if isinstance(spec, str) else [s for part in spec for s in part.split(",")]
    tasks: list[str] = []
    for item in (s.strip() for s in items):
        if not item:
            continue
        if item in SUITES:
            names = SUITES[item]
        elif item in INSTRUCTIONS:
            names = [item]
        elif f"{item}-v3" in INSTRUCTIONS:
            names = [f"{item}-v3"]
        else:
            close = [t for t in INSTRUCTIONS if item.split("-v")[0] in t][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UserError(
                f"unknown Meta-World task or suite '{item}'{hint}; use v3 task names like reach-v3, or a "
                f"suite: {', '.join(SUITES)}"
            )
        tasks += [t for t in names if t not in tasks]
    if not tasks:
        raise UserError(
            "no tasks given; pass --tasks with Meta-World v3 task names or a suite (MT10, MT50, ML45-train, ML45-test)"
        )
    return tasks


def task_for_instruction(instruction: str) -> str | None:
    """The Meta-World task recorded with this instruction, if any."""
    for name, text in INSTRUCTIONS.items():
        if text == instruction:
            return name
    return None
