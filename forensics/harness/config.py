"""What a co-evolution run is: one dataclass, YAML presets beside it (cpu-small, gpu, mini), and a hash of
the fields that decide its results, so that a rerun into the same folder resumes only the same experiment."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from detectors.promote import CHAMPION
from forensics.presets import read_preset
from generators.registry import FAMILIES

PRESET_DIR = Path(__file__).parent / "presets"
# Fields that may change between a run and its resumption without making it another experiment: more
# rounds extend it, and the device or progress display do not change what is computed.
NOT_HASHED = ("rounds", "device")


@dataclass
class CoevolveConfig:
    """One co-evolution experiment (see forensics.harness for the rounds).

    detector: a detector checkpoint folder, or "champion" (the registered champion detector).
    generators: [{"family": a registered family, "checkpoint": DIR, "name": optional}]; names default to
        the family and must be unique (they key metrics: auc/<name>).
    identities: held-out identity ids the fakes are made from (None: the world's test split). Each needs
        >= 2 videos: video 0 is the "fit" portion (both sides train on it), the rest the "eval" portion.
    fakes_per_family: fakes per family and portion per round (a face-swap pair may have fewer crops).
    replay_cap: earlier rounds' fakes kept on disk for the detector's replay buffer (all rounds together).
    sbi_fraction / replay_fraction: shares of the fake half of each detector batch drawn from self-blended
        pseudo-fakes and from the replay buffer; the rest are this round's new fakes.
    generator_steps / generator_batch / generator_lr: the evasion fine-tune of each generator (lr None:
        the family's training lr from its checkpoint).
    quality_tolerance: allowed relative worsening of the family's quality metric (0.25 = 25%); past it the
        evasion weight is halved and the fine-tune redone, at most max_quality_retries times.
    frames_per_pair: fakes made from runs of frames (an animation's driving clip) use at most this many
        consecutive frames per run.
    """
    world: str = "data/synth"
    detector: str = CHAMPION
    generators: list = field(default_factory=lambda: [{"family": "faceswap", "checkpoint": "runs/faceswap"},
                                                      {"family": "animation", "checkpoint": "runs/animation"}])
    rounds: int = 3
    identities: list | None = None
    fakes_per_family: int = 128
    replay_cap: int = 1024
    sbi_fraction: float = 0.25
    replay_fraction: float = 0.3
    detector_epochs: int = 2
    detector_lr: float = 2e-4
    detector_batch: int = 32
    generator_steps: int = 30
    generator_batch: int = 8
    generator_lr: float | None = None
    evasion_weight: float = 1.0
    quality_tolerance: float = 0.25
    max_quality_retries: int = 2
    frames_per_pair: int = 8
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        self.generators = [normalise_generator(g, i) for i, g in enumerate(self.generators or [])]
        names = [g["name"] for g in self.generators]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"coevolve: generator name(s) {', '.join(duplicates)} used twice; give each a "
                             f"distinct 'name'")
        if self.identities is not None:
            self.identities = [int(i) for i in self.identities]
        for name in ("rounds", "fakes_per_family", "detector_epochs", "detector_batch", "generator_steps",
                     "generator_batch", "frames_per_pair"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"coevolve: {name} must be >= 1, got {getattr(self, name)}")
        if self.detector_batch < 2:
            raise ValueError("coevolve: detector_batch must be >= 2 (half real, half fake)")
        for name in ("sbi_fraction", "replay_fraction"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"coevolve: {name} must be in [0, 1], got {getattr(self, name)}")
        if self.sbi_fraction + self.replay_fraction > 1.0:
            raise ValueError("coevolve: sbi_fraction + replay_fraction must not exceed 1 (the rest are new fakes)")
        if self.replay_cap < 0 or self.max_quality_retries < 0 or self.evasion_weight < 0:
            raise ValueError("coevolve: replay_cap, max_quality_retries and evasion_weight must be >= 0")

    @classmethod
    def from_preset(cls, name_or_path: str = "cpu-small", **overrides) -> "CoevolveConfig":
        return cls(**read_preset(cls, PRESET_DIR, name_or_path, "coevolve", overrides))

    def to_dict(self) -> dict:
        return asdict(self)

    def config_hash(self) -> str:
        """Hash of everything that decides the results (not rounds or device, see NOT_HASHED)."""
        decided = {k: v for k, v in self.to_dict().items() if k not in NOT_HASHED}
        return hashlib.sha256(json.dumps(decided, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def names(self) -> list[str]:
        return [g["name"] for g in self.generators]


def normalise_generator(entry, index: int) -> dict:
    """{"family", "checkpoint", "name"} from a preset entry; one-line errors for what cannot work."""
    if not isinstance(entry, dict):
        raise ValueError(f"coevolve: generators[{index}] must be a mapping with family and checkpoint, got {entry!r}")
    unknown = sorted(set(entry) - {"family", "checkpoint", "name"})
    if unknown:
        raise ValueError(f"coevolve: generators[{index}] has unknown key(s) {', '.join(unknown)}")
    family = entry.get("family")
    if family not in FAMILIES:
        raise ValueError(f"coevolve: unknown generator family {family!r} (known: {', '.join(FAMILIES.names())})")
    if not entry.get("checkpoint"):
        raise ValueError(f"coevolve: generators[{index}] ({family}) names no checkpoint")
    name = str(entry.get("name") or family)
    if not name.replace("-", "_").isidentifier():
        raise ValueError(f"coevolve: generator name {name!r} must be letters, digits, - and _")
    if name == "sbi":
        raise ValueError("coevolve: 'sbi' names the self-blended pseudo-fakes; call the generator otherwise")
    return {"family": family, "checkpoint": str(entry["checkpoint"]), "name": name}
