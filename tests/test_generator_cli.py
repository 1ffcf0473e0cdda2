"""The generator registry and the `train generator` / `fake` command lines: names resolve to the families,
mistakes are one-line usage errors (exit 2)."""
from __future__ import annotations

import pytest
import yaml

from forensics import __version__
from forensics.cli.main import main
from generators.registry import create_generator, get_generator, list_generators


def test_registry_resolves_families_and_rejects_unknown_names():
    assert list_generators() == ["animation", "faceswap"]
    for name in list_generators():
        spec = get_generator(name)
        assert spec.name == name and callable(spec.make_task) and callable(spec.train)
    spec, config = create_generator("faceswap", "cpu-small", identity_a=3, identity_b=4)
    assert (config.identity_a, config.identity_b, config.size) == (3, 4, 64)
    with pytest.raises(ValueError, match="unknown generator family 'stylegan'"):
        get_generator("stylegan")


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    assert main(["train", "generator", "stylegan"]) == 2
    assert capsys.readouterr().err.startswith("forensics train generator: unknown generator family 'stylegan'")
    assert main(["train", "generator", "animation", "--identity-a", "1"]) == 2
    assert main(["train", "generator", "faceswap", "--preset", "no-such"]) == 2
    missing = str(tmp_path / "absent")
    assert main(["fake", "swap", "--checkpoint", missing, "--target", missing, "--out", str(tmp_path / "o.mp4")]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
    assert main(["fake", "animate", "--model", missing, "--source", missing, "--driving", missing,
                 "--out", str(tmp_path / "o.mp4")]) == 2


def test_version_and_printable_presets(capsys):
    """`forensics --version`, and `train detector --show-preset` prints the settings a run would use."""
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"forensics {__version__}"
    assert main(["train", "detector", "--show-preset", "--preset", "gpu", "--epochs", "3"]) == 0
    printed = capsys.readouterr().out
    settings = yaml.safe_load(printed)
    assert printed.startswith("# gpu with the flags given") and settings["epochs"] == 3
    assert settings["crop_size"] == 224 and settings["detector"]


def test_one_flag_vocabulary_and_old_spellings_for_one_release(tmp_path, capsys):
    """--model names a trained model and --arch an architecture everywhere; the old spellings still work, after one
    line on stderr naming the replacement."""
    assert main(["train", "detector", "--show-preset", "--arch", "efficientnet-b0"]) == 0
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out)["detector"] == "efficientnet-b0" and captured.err == ""
    assert main(["train", "detector", "--show-preset", "--detector", "efficientnet-b0"]) == 0
    captured = capsys.readouterr()
    assert yaml.safe_load(captured.out)["detector"] == "efficientnet-b0"
    assert captured.err.strip() == ("forensics train detector: --detector is deprecated and goes in the next release; "
                                    "use --arch")
    missing = str(tmp_path / "absent")
    assert main(["fake", "swap", "--checkpoint", missing, "--target", missing, "--out", str(tmp_path / "o.mp4")]) == 2
    deprecation, error = capsys.readouterr().err.strip().splitlines()
    assert "--checkpoint is deprecated" in deprecation and "use --model" in deprecation and missing in error
    assert main(["fake", "swap", "--target", missing, "--out", str(tmp_path / "o.mp4")]) == 2
    assert "--model DIR is required" in capsys.readouterr().err
