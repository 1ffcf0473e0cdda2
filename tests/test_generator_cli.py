"""The generator registry and the `train generator` / `fake` command lines: names resolve to the families,
mistakes are one-line usage errors (exit 2)."""
from __future__ import annotations

import pytest


def test_registry_resolves_families_and_rejects_unknown_names():
    from generators.registry import create_generator, get_generator, list_generators

    assert list_generators() == ["animation", "faceswap"]
    for name in list_generators():
        spec = get_generator(name)
        assert spec.name == name and callable(spec.make_task) and callable(spec.train)
    spec, config = create_generator("faceswap", "cpu-small", identity_a=3, identity_b=4)
    assert (config.identity_a, config.identity_b, config.size) == (3, 4, 64)
    with pytest.raises(ValueError, match="unknown generator family 'stylegan'"):
        get_generator("stylegan")


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    from forensics.cli.main import main

    assert main(["train", "generator", "stylegan"]) == 2
    assert "unknown generator" in capsys.readouterr().err
    assert main(["train", "generator", "animation", "--identity-a", "1"]) == 2
    assert main(["train", "generator", "faceswap", "--preset", "no-such"]) == 2
    missing = str(tmp_path / "absent")
    assert main(["fake", "swap", "--checkpoint", missing, "--target", missing, "--out", str(tmp_path / "o.mp4")]) == 2
    assert f"{missing}: no such file" in capsys.readouterr().err
    assert main(["fake", "animate", "--checkpoint", missing, "--source", missing, "--driving", missing,
                 "--out", str(tmp_path / "o.mp4")]) == 2
