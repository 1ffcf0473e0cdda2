"""Co-evolution of generators and a detector (`forensics coevolve`): does the detector hold up against new
fakes, and can generators trained against it get past it?

    from forensics.harness import CoevolveConfig, run_coevolution
    config = CoevolveConfig.from_preset("cpu-small", detector="runs/detector/model")
    records = run_coevolution(config, "runs/coevolve")        # one record per round; resumable

Each round: (a) every generator makes a fresh batch of fakes from held-out identities; (b) the current
detector is scored on them (AUC before training: how it holds up against new fakes); (c) it is
fine-tuned on them plus a replay buffer of earlier rounds' fakes and self-blended pseudo-fakes, and
scored again ("retrained"); (d) each generator is fine-tuned against the frozen detector (its logit
added to the generator's own losses, under a quality guard) and (e) its new fakes are scored ("after").

The domain is the generators' resolution. The cpu-small generators draw 64-px aligned crops, the detector
reads 128-px crops (both five-point aligned, margin 0.25). Were fakes 64-px faces among native 128-px
reals, the detector would only learn "blurry = fake" and neither side could move. So here real and fake
crops alike are aligned at the generator size (load_faceset(world, size=gen_size, margin)) and resized to
the detector's input right before it: bilinearly and differentiably (detectors.preprocess_tensor) where
gradients must flow to a generator, by the detector's own preprocess (cv2) where they need not.

Held-out identities (default: the world's test split) have >= 2 videos each: video 0 is the "fit" portion
(detector and generator fine-tunes), the others the "eval" portion (steps b and e), so evasion and
recovery are measured on frames neither side trained on here. With so few people (and one video each per
portion), who is shown and where must carry no label: animation fakes cycle evenly through the identities,
and the detector's fine-tune pairs every real with a fake from the same video (see fakes.py, finetune.py).

Outputs under OUT: state.json (finished steps, atomic; a rerun resumes there and refuses a different
config), rounds.jsonl (one record per finished round), summary.json, round_XX/ (fakes, scores, the
fine-tuned detector and generators, training checkpoints), replay/, champion/ (the final detector,
registered as forensics-detector@champion unless told not to). MLflow: a parent run in experiment
`coevolve`, one nested run per round (see rounds.py for the metric names).
"""
from forensics.harness.config import CoevolveConfig
from forensics.harness.rounds import run_coevolution

__all__ = ["CoevolveConfig", "run_coevolution"]
