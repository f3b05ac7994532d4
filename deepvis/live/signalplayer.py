"""Live playback of a long signal through a 1-D model, as a window sliding along it.

The signal is conformed to the model once (its rate, its channels). Playing moves the
window by ``hop`` samples at the signal's own pace (``speed`` 1 is real time): the position
comes from the wall clock, so a model slower than real time skips windows instead of
falling behind, as the camera pipeline drops frames. ``speed`` 0 steps window after window
as fast as the model runs (benchmarks, scanning a file). Paused, the window stays where it
is and is recomputed when the settings change (another layer in view) or the user seeks.

Each step runs on the process's compute thread, like the live pipeline's: the forward pass
with a hook on the layer in view, the top-k summary and, when asked, the gradient of the top
class over time. Results are frozen ``SignalResult``s handed to ``on_result``; errors go to
``on_error`` once, and playback goes on.
"""

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
import torch

from deepvis.attribution.saliency import attribute, top_class
from deepvis.core.loading import LoadedModel
from deepvis.core.predictions import Summary
from deepvis.core.probe import Probe
from deepvis.errors import DeepvisError
from deepvis.io.signals import Signal, conform, window
from deepvis.live.computethread import ComputeThread, compute_thread
from deepvis.live.publisher import ResultPublisher

STAGES = ("window", "forward", "predict", "saliency")


@dataclass(frozen=True)
class PlaybackSettings:
    layer: str | None = None  # the layer whose channels x time map is published
    hop: int | None = None  # samples from one window to the next; None: a quarter of the window
    speed: float = 1.0  # 1: real time; 0: as fast as the model runs
    playing: bool = True
    loop: bool = True  # start over at the end (else pause there)
    topk: int = 5
    saliency: bool = False  # the top class's input gradient over time, each window


@dataclass(frozen=True)
class SignalResult:
    index: int  # results published so far, from 1
    start: int  # the window's first sample, in the conformed signal
    window: np.ndarray  # float32 (channels, length): what the model sees
    activation: np.ndarray | None  # float32 (channels, time) of settings.layer; None without a layer
    summary: Summary
    saliency: np.ndarray | None  # float32 (length,): the top class's gradient, summed over channels
    timings: Mapping[str, float]  # milliseconds per stage and "total"
    fps: float
    settings: PlaybackSettings


class SignalPlayer(ResultPublisher):
    def __init__(self, model: LoadedModel, signal: Signal, settings: PlaybackSettings | None = None, *,
                 probe: Probe | None = None, on_result: Callable[[SignalResult], None] | None = None,
                 on_error: Callable[[str], None] | None = None, compute: ComputeThread | None = None):
        if model.signal is None:
            raise DeepvisError(f"{model.name} takes pictures, not signals")
        super().__init__(on_result, on_error)
        spec = model.signal
        self.model = model
        self.probe = probe or Probe(model.module, model.example_input())
        self.length = spec.length
        self.rate = spec.rate or signal.rate  # None: the file's own pace is unknown
        self.data = conform(signal, spec.channels, spec.rate)
        self.data.flags.writeable = False
        self.settings = settings or PlaybackSettings()
        self._check(self.settings)
        self._compute = compute or compute_thread()
        self._step_lock = threading.RLock()
        self._position = 0  # the window's start when paused, or where playback was anchored
        self._anchor: float | None = None  # the wall-clock time of _position while playing in real time
        self._version = 0  # settings changes: the same window is computed again
        self._seeks = 0  # moves by the user: a step in flight must not move the window after them
        self._done = None  # (start, version) of the last result

    # --- control ---------------------------------------------------------------------------

    @property
    def samples(self) -> int:
        return int(self.data.shape[1])

    @property
    def last_start(self) -> int:
        """The last window start that still lies wholly inside the signal (0 when it is short)."""
        return max(self.samples - self.length, 0)

    @property
    def hop(self) -> int:
        return self.settings.hop or max(self.length // 4, 1)

    def seconds(self, samples: int) -> float | None:
        return samples / self.rate if self.rate else None

    def start(self) -> "SignalPlayer":
        if not self._started:
            self._started = True
            self._anchor = None
            self._compute.add_idle(self._step)
        return self

    def stop(self) -> None:
        """Stop playing; returns once no step of this player runs (the caller may exit the
        process then: a thread still inside torch at exit aborts it)."""
        self._signal_stop()
        self._compute.remove_idle(self._step)
        with self._step_lock:
            pass

    def update(self, **changes) -> PlaybackSettings:
        new = replace(self.settings, **changes)
        self._check(new)
        with self._cond:
            if new.playing != self.settings.playing or new.speed != self.settings.speed:
                self._position = self._current_start(time.perf_counter())
                self._anchor = None
            self.settings = new
            self._version += 1
        self._compute.wake()
        return new

    def seek(self, start: int) -> None:
        """Put the window at ``start`` (clipped to the signal); playback goes on from there."""
        with self._cond:
            self._position = int(min(max(start, 0), self.last_start))
            self._anchor = None
            self._seeks += 1  # not the version: paused on the window already shown, nothing to compute
        self._compute.wake()

    def _check(self, settings: PlaybackSettings) -> None:
        if settings.layer is not None:
            info = self.probe.layer(settings.layer)  # a DeepvisError naming close matches
            if len(info.shape) not in (1, 2):
                raise DeepvisError(f"{info.name} outputs {tuple(info.shape)}: not channels x time")
        if settings.hop is not None and settings.hop < 1:
            raise DeepvisError(f"the hop must be at least one sample, got {settings.hop}")
        if not (settings.speed >= 0 and math.isfinite(settings.speed)):
            raise DeepvisError(f"the speed must be 0 (as fast as possible) or positive, got {settings.speed}")

    # --- the compute step ----------------------------------------------------------------------

    def _current_start(self, now: float) -> int:
        s = self.settings
        if not s.playing or s.speed == 0 or self._anchor is None or self.rate is None:
            return self._position
        walked = (now - self._anchor) * self.rate * s.speed
        start = self._position + int(walked // self.hop) * self.hop  # whole hops: windows line up
        if start <= self.last_start:
            return start
        return start % (self.last_start + self.hop) if s.loop else self.last_start

    def _step(self) -> bool:
        with self._step_lock:
            return self._step_locked()

    def _step_locked(self) -> bool:
        if self._stop.is_set():
            return False
        now = time.perf_counter()
        with self._cond:
            s = self.settings
            if s.playing and s.speed > 0 and self.rate is not None and self._anchor is None:
                self._anchor = now
            start = self._current_start(now)
            if s.playing and not s.loop and start >= self.last_start and self._done is not None \
                    and self._done[0] >= self.last_start:
                self.settings = replace(s, playing=False)  # ran to the end: pause there
                self._position, self._anchor = self.last_start, None
                return False
            key = (start, self._version)
            if key == self._done:
                return False
            self._done = key
            moves = (self._version, self._seeks)
        try:
            result = self._process(start, s)
        except DeepvisError as exc:
            self._report(str(exc))
            return True
        except torch.OutOfMemoryError:
            self._report(f"out of memory running {self.model.name} on {self.model.device}")
            return True
        except Exception as exc:  # playback goes on; the message says what broke
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self._report(f"{type(exc).__name__} while processing a window: {first}")
            return True
        with self._cond:
            if s.playing and (s.speed == 0 or self.rate is None) and (self._version, self._seeks) == moves:
                # Stepping as fast as the model runs: the next window is the next hop.
                after = start + self.hop
                self._position = after if after <= self.last_start else (0 if s.loop else self.last_start)
        self._publish(result)
        return True

    def _process(self, start: int, s: PlaybackSettings) -> SignalResult:
        t0 = time.perf_counter()
        data = np.ascontiguousarray(window(self.data, start, self.length))
        data.flags.writeable = False
        x = torch.tensor(data)[None].to(self.model.device)  # a copy: torch wants writable memory
        t1 = time.perf_counter()
        layers = [s.layer] if s.layer else []
        with torch.inference_mode():
            output, acts = self.probe.capture(x, layers)
        activation = None
        if s.layer:
            activation = acts[s.layer][0].float().cpu().numpy()
            activation = np.ascontiguousarray(activation if activation.ndim == 2 else activation[:, None])
            activation.flags.writeable = False
        t2 = time.perf_counter()
        summary = self.model.summarize(output, s.topk)
        t3 = time.perf_counter()
        saliency = None
        if s.saliency:
            target = top_class(self.model.module, x, self.model.head)
            saliency = attribute(self.model.module, self.probe, x, "gradient", target, head=self.model.head)
            saliency = np.ascontiguousarray(np.asarray(saliency, np.float32).reshape(-1))
            saliency.flags.writeable = False
        t4 = time.perf_counter()
        timings = {"window": (t1 - t0) * 1000, "forward": (t2 - t1) * 1000, "predict": (t3 - t2) * 1000,
                   "saliency": (t4 - t3) * 1000}
        timings["total"] = sum(timings.values())
        return SignalResult(index=0, start=start, window=data, activation=activation, summary=summary,
                            saliency=saliency, timings=MappingProxyType(timings), fps=0.0, settings=s)
