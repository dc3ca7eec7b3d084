"""Join episodes' mp4 files into one video file, packets copied, nothing re-encoded.

LeRobot v3 keeps many episodes in one video file, each between its from_timestamp and
to_timestamp; LeRobot v2.x kept an mp4 an episode, its times starting at 0. An episode's mp4 is
appended by copying its compressed packets with their times moved past the end of the file so
far: the joined file decodes to the very pixels the episode's file did, and joining costs a pass
over the bytes, not a decode. A decoder reads the whole file with the first episode's stream
settings, so only streams alike in codec, size, pixel format, time base and codec parameters
(`VideoJoin.takes`) share a file.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from leanvla.errors import UserError, require
from leanvla.machine_errors import refusal_to_open
from leanvla.optional import require_module


class SourceVideo:
    """An episode's mp4 opened for its packets, or one line saying why it cannot be; `episode` is
    named in that line."""

    def __init__(self, path: Path, episode: int):
        av = require_module("av")
        self.path, self.episode, self._error = path, episode, av.error.FFmpegError
        try:
            self._container = av.open(str(path))
        except self._error as exc:
            raise self._unreadable(exc) from exc
        if not self._container.streams.video:
            self._container.close()
            raise UserError(f"{path} (episode {episode}) has no video stream; re-encode it")
        self.stream = self._container.streams.video[0]
        context = self.stream.codec_context
        self.settings = (
            context.name,
            context.width,
            context.height,
            context.format.name if context.format else None,
            self.stream.time_base,
            bytes(context.extradata or b""),
        )

    def packets(self):
        """The video stream's packets in file order, each with its times; flush markers left out."""
        try:
            for packet in self._container.demux(self.stream):
                if packet.size == 0:
                    continue
                require(
                    packet.pts is not None and packet.dts is not None,
                    f"{self.path} (episode {self.episode}) has packets without timestamps; re-encode it",
                )
                yield packet
        except self._error as exc:
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: Exception) -> Exception:
        # Not damaged where the filesystem refuses it: that refusal, as Python says it.
        return refusal_to_open(self.path) or UserError(
            f"cannot read {self.path} (episode {self.episode}): {exc}; is it truncated or damaged? "
            "(--videos link places the files without reading them)"
        )

    def __enter__(self) -> SourceVideo:
        return self

    def __exit__(self, *_) -> None:
        self._container.close()


class VideoJoin:
    """A video file being written at `path`: episodes' mp4s appended one after another."""

    def __init__(self, path: Path):
        self.path = path
        self.bytes = 0  # of the mp4s appended so far: about the joined file's size
        self._av = require_module("av")
        self._container = None
        self._stream = None
        self._settings = None
        self._end = 0  # where the next episode may start, in the stream's time base

    def takes(self, source) -> bool:
        """Whether the mp4 opened as `source` (a `SourceVideo`) can join this file: any can join
        an empty one."""
        return self._settings is None or source.settings == self._settings

    def append(self, source: SourceVideo, frames: int, fps: float) -> float:
        """Copy `source`'s packets after those already here; returns when its first frame is shown in
        this file (the episode's from_timestamp), in seconds. The episode has `frames` frames at
        `fps`: the next episode starts no earlier than its end, even where the packets stop sooner."""
        if not self.takes(source):
            raise ValueError(f"{source.path} cannot join {self.path}: its stream differs")
        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = self._av.open(str(self.path), "w")
            self._stream = self._container.add_stream_from_template(source.stream, opaque=True)
            self._stream.time_base = source.stream.time_base
            self._settings = source.settings
        time_base = source.stream.time_base
        # Alike streams (one encoder's settings) delay decoding alike, so the decoding times stay
        # increasing when the presentation times do.
        offset, ends = self._end, [0]
        for packet in source.packets():
            ends.append(packet.pts + (packet.duration or 0))
            packet.pts += offset
            packet.dts += offset
            packet.stream = self._stream
            self._container.mux(packet)
        # In whole ticks, reckoned exactly: 0.4 s as a float is a hair over 0.4.
        length = math.ceil(frames / Fraction(fps).limit_denominator(1_000_000) / Fraction(time_base))
        self._end = offset + max(max(ends), length)
        self.bytes += source.path.stat().st_size
        return float(offset * time_base)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
