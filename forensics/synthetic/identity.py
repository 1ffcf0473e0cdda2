"""Who is shown: an identity is a parameter vector, sampled once and reused for every video of that person.

Lengths are in head units (the skull is about 1.5 wide); colours are sRGB in 0..1. Everything a frame
needs to look like *this* person lives here, so a generator that must transfer an identity can be scored
against the exact parameters.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

HAIR_STYLES = ("bald", "buzz", "short", "medium", "long", "curly", "bun")
BEARDS = ("none", "stubble", "mustache", "goatee", "full")

# sRGB skin albedos from very light to very dark (Fitzpatrick I..VI and beyond); sampled along this ramp.
SKIN_RAMP = np.array([
    (0.96, 0.85, 0.78), (0.92, 0.76, 0.66), (0.84, 0.64, 0.51), (0.70, 0.49, 0.35),
    (0.53, 0.35, 0.23), (0.36, 0.23, 0.15), (0.24, 0.15, 0.10),
], dtype=np.float32)
HAIR_COLOURS = {
    "black": (0.05, 0.045, 0.04), "dark_brown": (0.16, 0.10, 0.07), "brown": (0.33, 0.22, 0.13),
    "auburn": (0.45, 0.20, 0.10), "red": (0.62, 0.28, 0.12), "blonde": (0.78, 0.62, 0.38),
    "platinum": (0.88, 0.83, 0.70), "grey": (0.55, 0.54, 0.52), "white": (0.86, 0.85, 0.82),
}
IRIS_COLOURS = {
    "dark_brown": (0.20, 0.11, 0.06), "brown": (0.38, 0.22, 0.10), "hazel": (0.45, 0.36, 0.18),
    "green": (0.30, 0.45, 0.28), "blue": (0.30, 0.48, 0.70), "grey": (0.45, 0.50, 0.55),
}


@dataclass
class Identity:
    """One synthetic person. ``to_dict``/``from_dict`` round-trip exactly (JSON-friendly)."""

    id: int
    sex: str                         # "f" | "m": only steers priors (beards, face width, hair length)
    skin_tone: float                 # 0 very light .. 1 very dark (position on SKIN_RAMP)
    skin_rgb: tuple                  # sRGB albedo
    blush: float                     # redness of cheeks and nose
    face_width: float                # skull width multiplier
    jaw_width: float                 # lower-face width multiplier
    face_length: float               # lower-face length multiplier
    chin_taper: float                # how much the jaw narrows towards the chin
    eye_sep: float                   # half distance between eye centres
    eye_y: float                     # eye-line height
    eye_width: float                 # half width of the eye opening
    eye_height: float                # upper-lid height above the eye line
    eye_tilt: float                  # outer corners higher (+) or lower (-)
    iris_rgb: tuple
    iris_radius: float
    brow_height: float               # brow centre above the eye line
    brow_thickness: float
    brow_arch: float
    brow_rgb: tuple
    nose_length: float               # tip height below the eye line
    nose_width: float                # half width across the wings
    nose_protrusion: float
    mouth_y: float                   # mouth line height (negative: below the eyes)
    mouth_width: float               # half width, corner to centre
    lip_upper: float
    lip_lower: float
    lip_rgb: tuple
    hair_style: str
    hair_rgb: tuple
    hair_colour: str
    hairline: float                  # forehead top
    hair_volume: float               # thickness of the hair shell
    beard: str
    beard_rgb: tuple
    glasses: bool
    glasses_rgb: tuple
    glasses_round: bool
    ear_size: float
    texture_seed: int                # phases of skin/hair noise

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Identity":
        kw = {}
        for f in fields(cls):
            v = d[f.name]
            kw[f.name] = tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else v
        return cls(**kw)

    @property
    def name(self) -> str:
        return identity_name(self.id)


def identity_name(id: int) -> str:
    return f"id{id:04d}"


def identity_rng(seed: int, id: int) -> np.random.Generator:
    """The generator that makes identity ``id`` of world ``seed`` (independent of how many are asked for)."""
    return np.random.default_rng([int(seed), int(id), 0x1D])


def _tone_to_rgb(tone: float, rng: np.random.Generator) -> tuple:
    pos = tone * (len(SKIN_RAMP) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(SKIN_RAMP) - 1)
    rgb = SKIN_RAMP[lo] * (1 - (pos - lo)) + SKIN_RAMP[hi] * (pos - lo)
    undertone = rng.normal(0, 0.025)             # + warmer/redder, - more olive
    rgb = rgb * np.array([1 + undertone, 1.0, 1 - undertone]) * rng.uniform(0.97, 1.03)
    return tuple(float(x) for x in np.clip(rgb, 0.05, 0.98))


def _jitter(rgb, rng: np.random.Generator, amount: float = 0.08) -> tuple:
    return tuple(float(x) for x in np.clip(np.asarray(rgb) * rng.uniform(1 - amount, 1 + amount, 3), 0.02, 0.98))


def _pick(rng: np.random.Generator, options, p=None):
    p = None if p is None else np.asarray(p, dtype=float) / np.sum(p)
    return options[int(rng.choice(len(options), p=p))]


def sample_identity(rng: np.random.Generator, id: int) -> Identity:
    """Draw a person; skin tones are spread evenly over the whole ramp rather than clustered."""
    sex = _pick(rng, ("f", "m"))
    male = sex == "m"
    tone = float(rng.uniform(0.0, 1.0))
    skin = _tone_to_rgb(tone, rng)
    dark_hair_p = 0.35 + 0.45 * tone              # darker skin: darker hair more likely
    colour_names = list(HAIR_COLOURS)
    light_p = (1 - dark_hair_p) / 5
    hair_colour = _pick(rng, colour_names, [dark_hair_p * 0.6, dark_hair_p * 0.4, light_p * 1.6, light_p * 0.7,
                                            light_p * 0.5, light_p * 1.2, light_p * 0.3, light_p * 0.5,
                                            light_p * 0.2])
    hair = _jitter(HAIR_COLOURS[hair_colour], rng)
    style_p = [0.10, 0.18, 0.32, 0.2, 0.05, 0.1, 0.05] if male else [0.02, 0.03, 0.1, 0.3, 0.3, 0.12, 0.13]
    style = _pick(rng, HAIR_STYLES, style_p)
    beard = _pick(rng, BEARDS, [0.45, 0.2, 0.1, 0.1, 0.15]) if male else "none"
    beard_rgb = hair if rng.random() < 0.9 else _jitter(HAIR_COLOURS["grey"], rng)
    iris_names = list(IRIS_COLOURS)
    light_eyes = max(0.0, 0.6 - tone)
    iris = _pick(rng, iris_names, [0.35 + tone, 0.3, 0.1 + light_eyes * 0.3, light_eyes * 0.4,
                                   light_eyes * 0.8, light_eyes * 0.3])
    # lips: redder than the skin on light skin, darker and cooler than the skin on dark skin
    lip_base = np.asarray(skin) * (np.array([0.9, 0.66, 0.68]) * (1 - 0.3 * tone)) + np.array([0.05, 0.0, 0.01]) * (1 - tone)
    if not male and rng.random() < 0.35:          # lipstick
        lip_base = np.array([0.62, 0.16, 0.2]) * rng.uniform(0.7, 1.1)
    glasses_rgb = _pick(rng, [(0.05, 0.05, 0.05), (0.25, 0.15, 0.08), (0.55, 0.55, 0.58), (0.6, 0.45, 0.2)])
    return Identity(
        id=int(id), sex=sex, skin_tone=tone, skin_rgb=skin, blush=float(rng.uniform(0.0, 0.25)),
        face_width=float(rng.uniform(0.93, 1.05) * (1.02 if male else 0.98)),
        jaw_width=float(rng.uniform(0.88, 1.08) * (1.04 if male else 0.97)),
        face_length=float(rng.uniform(0.93, 1.07)), chin_taper=float(rng.uniform(0.3, 0.55)),
        eye_sep=float(rng.uniform(0.29, 0.315)), eye_y=float(rng.uniform(0.08, 0.12)),
        eye_width=float(rng.uniform(0.125, 0.145)), eye_height=float(rng.uniform(0.05, 0.065)),
        eye_tilt=float(rng.uniform(-0.012, 0.025)), iris_rgb=_jitter(IRIS_COLOURS[iris], rng),
        iris_radius=float(rng.uniform(0.054, 0.06)),
        brow_height=float(rng.uniform(0.17, 0.21)), brow_thickness=float(rng.uniform(0.05, 0.07) * (1.15 if male else 0.9)),
        brow_arch=float(rng.uniform(0.01, 0.04)),
        # brows are darker than the skin they sit on, whatever the hair colour (else they vanish)
        brow_rgb=_jitter(np.minimum(np.asarray(hair) * (0.8 if hair_colour in ("black", "dark_brown") else 0.55),
                                    np.asarray(skin) * 0.45), rng),
        nose_length=float(rng.uniform(0.3, 0.37)), nose_width=float(rng.uniform(0.105, 0.135) * (1 + 0.15 * tone)),
        nose_protrusion=float(rng.uniform(0.9, 1.1)),
        mouth_y=float(rng.uniform(-0.6, -0.54)), mouth_width=float(rng.uniform(0.215, 0.255)),
        lip_upper=float(rng.uniform(0.035, 0.055) * (1 + 0.2 * tone)),
        lip_lower=float(rng.uniform(0.048, 0.07) * (1 + 0.2 * tone)),
        lip_rgb=_jitter(np.clip(lip_base, 0.05, 0.95), rng, 0.05),
        hair_style=style, hair_rgb=hair, hair_colour=hair_colour,
        hairline=float(rng.uniform(0.72, 0.86) + (0.08 if male and rng.random() < 0.3 else 0.0)),
        hair_volume=float(rng.uniform(0.8, 1.25)),
        beard=beard, beard_rgb=beard_rgb,
        glasses=bool(rng.random() < 0.22), glasses_rgb=tuple(float(x) for x in glasses_rgb),
        glasses_round=bool(rng.random() < 0.4), ear_size=float(rng.uniform(0.9, 1.1)),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )
