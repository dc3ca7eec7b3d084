"""Which episodes of a dataset a command reads (`--episodes`, `--val-episodes`): a selection file
(a JSON list, or {"episodes": [...]} as curate writes), or the episodes themselves on the command
line, as LeRobot takes them (`--dataset.episodes="[0, 1, 2]"`): `[0, 1, 2]`, `0,1,2`, or ranges
`0:40,45` (START:END, END left out, as a dataset's meta/info.json writes its splits)."""

from __future__ import annotations

import re
from pathlib import Path

from leanvla.errors import UserError, require
from leanvla.json_values import is_whole, read_json

# Digits, commas, colons, spaces, and brackets around them: no file name a person would give.
_INLINE = re.compile(r"\s*\[?[\d\s,:]*\]?\s*")
EXAMPLE = "0:40,45"


def is_inline(given: Path | str) -> bool:
    """Whether `given` is episodes written out (`0:40,45`), not a file's name: it reads as one and
    no file has that name."""
    return _INLINE.fullmatch(str(given)) is not None and not Path(given).is_file()


def read_episode_selection(given: Path | str, num_episodes: int, flag: str = "--episodes") -> list[int]:
    """The episode indices `given` selects, sorted and each once: episodes written out, or a
    selection file."""
    if is_inline(given):
        episodes = _read_written_out(str(given), flag, num_episodes)
    else:
        episodes = _from_file(Path(given), flag)
    bad = [e for e in episodes if not 0 <= e < num_episodes]
    require(
        not bad,
        f"{flag} {given} names episodes {bad[:5]} that the dataset (0..{num_episodes - 1}) does not have",
    )
    require(len(episodes) > 0, f"{flag} {given} selects no episodes")
    return sorted(set(episodes))


def _from_file(path: Path, flag: str) -> list[int]:
    if not path.exists():
        raise UserError(
            f"{flag} {path}: no such file; give a JSON selection file (a list of episode indices, or "
            f'{{"episodes": [...]}} as curate writes) or the episodes themselves (e.g. {EXAMPLE})'
        )
    obj = read_json(path, f"{flag} file")
    episodes = obj.get("episodes") if isinstance(obj, dict) else obj
    require(
        isinstance(episodes, list) and all(is_whole(e) for e in episodes),  # `true` was episode 1
        f'{path} must hold a JSON list of episode indices or {{"episodes": [...]}}',
    )
    return episodes


def _read_written_out(text: str, flag: str, num_episodes: int) -> list[int]:
    """`[0, 1, 2]`, `0,1,2` or `0:40,45` as a list of indices; a range is checked here, before it is
    made a list (`0:10000000000` was one)."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    episodes = []
    for item in body.split(","):
        item = item.strip()
        if not item and body.strip() == "":  # `[]`: a list of none, refused as selecting none
            continue
        start, colon, end = item.partition(":")
        require(
            start.strip().isdigit() and (not colon or end.strip().isdigit()),
            f"{flag} {text}: '{item}' is not an episode index or a range START:END; write episodes as "
            f"{EXAMPLE} (a range leaves END out)",
        )
        if not colon:
            episodes.append(int(start))
            continue
        first, stop = int(start), int(end)
        require(
            first < stop,
            f"{flag} {text}: the range {item} holds no episode (END is left out: {first}:{first + 1} is "
            f"episode {first})",
        )
        require(
            stop <= num_episodes,
            f"{flag} {text}: the range {item} runs past the dataset's last episode, {num_episodes - 1} "
            f"(END is left out: 0:{num_episodes} is every episode)",
        )
        episodes.extend(range(first, stop))
    return episodes


def written_out(episodes: list[int]) -> str:
    """Episodes as --episodes takes them, runs of three or more as ranges: [0, 1, 2, 5, 7, 8] ->
    '0:3,5,7,8' (what `leanvla info` shows of each task's, to copy)."""
    items, ordered, start = [], sorted(set(episodes)), 0
    while start < len(ordered):
        stop = start
        while stop + 1 < len(ordered) and ordered[stop + 1] == ordered[stop] + 1:
            stop += 1
        if stop - start >= 2:
            items.append(f"{ordered[start]}:{ordered[stop] + 1}")
        else:
            items.extend(str(e) for e in ordered[start : stop + 1])
        start = stop + 1
    return ",".join(items)
