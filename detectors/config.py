"""The one description of a frame detector: enough to rebuild it exactly from a checkpoint's config.json."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Every backbone here reduces its input by 32; below this the last stage would have no pixels left.
MIN_INPUT_SIZE = 32


class ConfigFields:
    """replace() and to_dict() shared by the detector config dataclasses (frame and clip), which carry
    `name`, `mean` and `std`."""

    def replace(self, **changes: Any):
        """A copy with some fields changed; unknown names fail with the list of valid ones."""
        allowed = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(f"detector {self.name}: unknown option(s) {', '.join(unknown)} "
                             f"(valid: {', '.join(sorted(allowed))})")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out


@dataclass
class DetectorConfig(ConfigFields):
    """Architecture and input contract of a FrameDetector.

    mean/std are the backbone's own (timm pretrained config) so that ImageNet weights given as a local
    file see the statistics they were trained with. pretrained_file is provenance only once a
    detector is saved: loading a checkpoint never re-reads it.
    """

    name: str
    backbone: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    frequency: bool = False
    drop_rate: float = 0.0
    pretrained_file: str | None = None

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists; keep one canonical type so configs compare equal.
        self.mean = _triple(self.mean, "mean")
        self.std = _triple(self.std, "std")
        if isinstance(self.input_size, bool) or not isinstance(self.input_size, int):
            raise ValueError(f"detector {self.name}: input_size must be an integer, got {self.input_size!r}")
        if self.input_size < MIN_INPUT_SIZE:
            raise ValueError(f"detector {self.name}: input_size {self.input_size} is below {MIN_INPUT_SIZE}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"detector {self.name}: std must be positive, got {self.std}")
        if not 0.0 <= float(self.drop_rate) < 1.0:
            raise ValueError(f"detector {self.name}: drop_rate must be in [0, 1), got {self.drop_rate}")
        self.drop_rate = float(self.drop_rate)
        self.frequency = bool(self.frequency)
        if self.pretrained_file is not None:
            self.pretrained_file = str(self.pretrained_file)


def _triple(values, what: str) -> tuple[float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be three numbers, got {values!r}") from None
    if len(out) != 3:
        raise ValueError(f"{what} must be three numbers (one per RGB channel), got {len(out)}")
    return out  # type: ignore[return-value]
