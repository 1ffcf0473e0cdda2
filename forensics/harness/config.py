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
BUDGET_KEYS = ("id_retrieval", "landmark_error", "reconstruction")


@dataclass
class CoevolveConfig:
    """One co-evolution experiment (see forensics.harness for the game).

    world: a synthetic world; its splits give the roles: train = what both sides learn from, val = where the
        detector's move early-stops and calibrates, test = the evaluation panel nobody trains on.
    detector: the starting champion (a detector folder, or "champion": the registered one).
    generators: [{"family", "checkpoint", "name"}]; names default to the family and must be unique.
    held_out_family: a family kept out of the game: never evolved, never trained on; its fakes are only scored
        on the panel (does playing against the others help against it?).
    crf: the H.264 CRF range every fake video is encoded at (drawn per video).
    fit_fakes / val_fakes: product-path fake videos per game generator per round on train / val real videos
        (the detector's pool and its validation); the world must hold that many videos of the split.
    frames: frames per video read back through the face-crop path (cache, panel).
    detector_*: the detector's move: warm start from the champion, at most detector_epochs epochs, early
        stopping after detector_patience epochs without better validation AUC.
    sbi_fraction: share of the move's fakes that are self-blends of the paired real (the rest: product fakes
        of the same video, every generator version so far).
    generator_*: the generator's move (hinge at the champion's threshold on the family's differentiable fakes).
    budget: how far a generator version may drift from G0 before its move is refused: id_retrieval (absolute
        drop of source-identity retrieval), landmark_error and reconstruction (relative increase).
    max_quality_retries: a move over budget is retried with half the evasion weight, this many times.
    bootstrap / confidence / tolerance: the promotion gate (paired bootstrap over panel videos; see gate.py).
    probe_epochs / probe_scenes: training of the identity and landmark probes that measure quality.
    """
    world: str = "data/synth"
    detector: str = CHAMPION
    generators: list = field(default_factory=lambda: [{"family": "faceswap", "checkpoint": "runs/faceswap"},
                                                      {"family": "animation", "checkpoint": "runs/animation"}])
    held_out_family: str | None = None
    rounds: int = 3
    crf: list = field(default_factory=lambda: [18, 30])
    fit_fakes: int = 12
    val_fakes: int = 6
    frames: int = 8
    detector_epochs: int = 6
    detector_patience: int = 2
    detector_lr: float = 5e-4
    detector_batch: int = 32
    sbi_fraction: float = 0.3
    generator_steps: int = 15
    generator_batch: int = 8
    generator_lr: float | None = None
    evasion_weight: float = 1.0
    budget: dict = field(default_factory=lambda: {"id_retrieval": 0.15, "landmark_error": 0.25,
                                                  "reconstruction": 0.25})
    max_quality_retries: int = 2
    frames_per_pair: int = 8
    bootstrap: int = 1000
    confidence: float = 0.9
    tolerance: float = 0.01
    probe_epochs: int = 10
    probe_scenes: int = 8
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        self.generators = [normalise_generator(g, i) for i, g in enumerate(self.generators or [])]
        names = [g["name"] for g in self.generators]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"coevolve: generator name(s) {', '.join(duplicates)} used twice; give each a "
                             f"distinct 'name'")
        families = sorted({g["family"] for g in self.generators})
        if self.held_out_family is not None and self.held_out_family not in families:
            raise ValueError(f"coevolve: held_out_family {self.held_out_family!r} names none of the generators "
                             f"({', '.join(families) or 'none'})")
        if self.generators and not self.game_generators:
            raise ValueError("coevolve: every generator is held out; at least one must play")
        for name in ("rounds", "fit_fakes", "val_fakes", "frames", "detector_epochs", "detector_batch",
                     "generator_steps", "generator_batch", "frames_per_pair", "bootstrap", "probe_epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"coevolve: {name} must be >= 1, got {getattr(self, name)}")
        if self.detector_batch < 2:
            raise ValueError("coevolve: detector_batch must be >= 2 (half real, half fake)")
        if len(self.crf) != 2 or not 0 <= int(self.crf[0]) <= int(self.crf[1]) <= 51:
            raise ValueError(f"coevolve: crf must be [low, high] with 0 <= low <= high <= 51, got {self.crf}")
        if not 0.0 <= float(self.sbi_fraction) <= 1.0 or not 0.5 <= float(self.confidence) < 1.0:
            raise ValueError("coevolve: sbi_fraction must be in [0, 1] and confidence in [0.5, 1)")
        unknown = sorted(set(self.budget) - set(BUDGET_KEYS))
        if unknown:
            raise ValueError(f"coevolve: unknown budget key(s) {', '.join(unknown)} (known: {', '.join(BUDGET_KEYS)})")
        self.budget = {k: float(self.budget.get(k, 0.25)) for k in BUDGET_KEYS}
        if self.max_quality_retries < 0 or self.evasion_weight < 0 or self.probe_scenes < 0 or self.tolerance < 0:
            raise ValueError("coevolve: max_quality_retries, evasion_weight, probe_scenes and tolerance must be >= 0")

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

    @property
    def game_generators(self) -> list[dict]:
        """The generators that play (every one but the held-out family's)."""
        return [g for g in self.generators if g["family"] != self.held_out_family]

    @property
    def held_out_generators(self) -> list[dict]:
        return [g for g in self.generators if g["family"] == self.held_out_family]


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
    if name in ("sbi", "union"):
        raise ValueError(f"coevolve: {name!r} names a panel column; call the generator otherwise")
    return {"family": family, "checkpoint": str(entry["checkpoint"]), "name": name}
