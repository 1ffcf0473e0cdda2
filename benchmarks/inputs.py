"""Where a suite's inputs come from: the command line, the suite file, or what `make demo` made.

A shipped suite names the folders a user's own training writes (data/synth, runs/faceswap, ...). Right after
`make demo` those do not exist, but the demo's world and generators do (demo/synth, demo/generators/FAMILY)
and its champion detector is registered. Each input is taken from, in this order:

1. the command line: `--world DIR`, `--generator FAMILY=DIR`, `--model MODEL` (the detector), `--data-root DIR`
   (real datasets, which only the command line or the suite file can name);
2. the suite file, where that path exists;
3. the demo's output, where that exists;
Found nowhere, the suite stops before it starts, in one line that says how to make the input.

The suite prints what it took in its first lines and keeps it in the results JSON (`inputs`), with the reason.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.suites import SuiteError, get_kind

DEMO_DIR = Path("demo")
WORLD_FILE = "manifest.csv"           # a rendered world has one
CHECKPOINT_FILE = "config.json"       # a generator checkpoint folder has one


def parse_generator_flags(flags: list[str] | None) -> dict[str, str]:
    """`--generator FAMILY=DIR` flags as {family: dir}; a malformed or repeated one is a SuiteError."""
    out: dict[str, str] = {}
    for flag in flags or []:
        family, sep, path = flag.partition("=")
        if not sep or not family.strip() or not path.strip():
            raise SuiteError(f"--generator {flag!r}: give FAMILY=DIR, e.g. --generator faceswap=demo/generators/faceswap")
        if family.strip() in out:
            raise SuiteError(f"--generator {family.strip()}: given twice")
        out[family.strip()] = path.strip()
    return out


def apply_inputs(suite, world: str | None = None, generators: dict[str, str] | None = None,
                 detector: str | None = None, demo_dir: str | Path = DEMO_DIR, data_root: str | None = None):
    """A copy of `suite` with its world, generator checkpoints and detector chosen as the module docstring
    says, and `inputs` recording each choice as {"path": ..., "from": ...}."""
    uses = get_kind(suite.kind).inputs
    demo_dir = Path(demo_dir)
    for flag, given, key in (("--world", world, "world"), ("--generator", generators, "generators"),
                             ("--model", detector, "detector")):
        if given and key not in uses:
            raise SuiteError(f"{flag}: the {suite.name} suite ({suite.kind}) takes no {key}"
                             + (" (it trains its own detector for each row)" if key == "detector" else ""))
    if data_root and "data_root" not in uses:
        raise SuiteError(f"--data-root: the {suite.name} suite ({suite.kind}) reads no datasets")
    params = dict(suite.params)
    inputs: dict[str, dict] = {}
    if "data_root" in uses:
        params["data_root"], inputs["data root"] = data_root_of(suite, data_root)
    new_world = suite.world
    if "world" in uses:
        new_world, inputs["world"] = choose(world, suite.world, demo_dir / "synth", WORLD_FILE, "world")
    if "generators" in uses:
        named = dict(params.get("generators") or {})
        unknown = sorted(set(generators or {}) - set(named))
        if unknown:
            raise SuiteError(f"--generator {unknown[0]}: the {suite.name} suite has no {unknown[0]} generator (it names "
                             f"{', '.join(sorted(named)) or 'none'}); add it to a copy of the suite file")
        chosen = {}
        for family, path in named.items():
            if path is None and family not in (generators or {}):
                continue                      # left out of this suite on purpose
            chosen[family], inputs[f"generator {family}"] = choose(
                (generators or {}).get(family), path, demo_dir / "generators" / family, CHECKPOINT_FILE,
                f"{family} generator")
        params["generators"] = {**named, **chosen}
    if "detector" in uses:
        if detector:
            params["detector"] = detector
            inputs["detector"] = {"path": detector, "from": "--model"}
        elif params.get("detector"):
            inputs["detector"] = {"path": params["detector"], "from": "the suite file"}
    return dataclasses.replace(suite, world=new_world, params=params, inputs=inputs)


def data_root_of(suite, flag: str | None) -> tuple[str, dict]:
    """Real datasets cannot be made here: the folder holding them comes from --data-root or the suite file."""
    given, origin = (flag, "--data-root") if flag else (suite.params.get("data_root"), "the suite file")
    if not given or not Path(given).is_dir():
        wanted = sorted({t["folder"] for t in [suite.params.get("train") or {}, *(suite.params.get("tests") or [])]
                         if t.get("folder")})
        raise SuiteError(f"{suite.name}: " + (f"{given}: no such folder" if given else "no datasets given")
                         + f"; pass --data-root DIR, the folder holding {', '.join(wanted) or 'the datasets'} "
                           f"(downloaded by you; nothing is fetched)")
    return given, {"path": given, "from": origin}


def choose(flag: str | None, from_suite: str | None, from_demo: Path, marker: str, what: str) -> tuple[str, dict]:
    """(path, {"path", "from"}) for one input, by the order in the module docstring."""
    if flag:
        return flag, {"path": flag, "from": "the command line"}
    if from_suite and (Path(from_suite) / marker).is_file():
        return from_suite, {"path": from_suite, "from": "the suite file"}
    if (from_demo / marker).is_file():
        why = f"make demo's output; the suite's {from_suite} does not exist" if from_suite else "make demo's output"
        return str(from_demo), {"path": str(from_demo), "from": why}
    raise SuiteError(f"{from_suite}: no {what} there, nor in {from_demo} (make demo's output); "
                     + (f"render one with: forensics synth --out {from_suite}" if what == "world" else
                        f"train one with: forensics train generator {what.split()[0]} --out {from_suite}")
                     + ", run make demo, or name one with " + ("--world DIR" if what == "world" else
                                                               f"--generator {what.split()[0]}=DIR"))


def describe_inputs(inputs: dict) -> list[str]:
    """The lines a suite starts with: each input, its path and where it came from."""
    width = max((len(name) for name in inputs), default=0)
    return [f"  {name:<{width}}  {entry['path']}  ({entry['from']})" for name, entry in inputs.items()]
