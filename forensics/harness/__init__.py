"""Co-evolution of generators and a detector (`forensics coevolve`): the arms race, played on the product path,
with evidence before promotion.

    from forensics.harness import CoevolveConfig, run_coevolution
    config = CoevolveConfig.from_preset("cpu-small", detector="runs/detector/model")
    records = run_coevolution(config, "runs/coevolve")        # one record per round; resumable

Roles come from the world's splits: train videos are what both sides learn from, val videos where the
detector's move early-stops and calibrates, test videos the evaluation panel nothing trains on (panel.py:
fixed and hashed; real test videos, their self-blends, and product-path fakes of every generator version,
each version's made once). Each round:
1. each game generator moves against the champion: its own reconstruction losses plus a hinge at the
   champion's threshold on its differentiable fakes; the move is refused if the version drifts from G0 beyond
   a quality budget (probes: source-identity retrieval, landmark error; the family's reconstruction metric);
2. the new version's fakes are made the way `forensics fake` makes them (whole frames, colour-matched,
   feather-blended, H.264 at a sampled CRF) and read back through the face-crop path of `forensics detect`:
   fresh training and validation fakes every round, and the version's panel column once;
3. the detector moves: warm start from the champion, trained on real train crops paired with fakes of the
   same video from every version so far (or self-blends), early-stopped and calibrated on validation;
4. every detector version is scored on every panel column (video AUC, bootstrap CIs over videos);
5. the gate (gate.py) promotes the candidate to champion only if it is no worse on every panel column and
   better on their union; otherwise it is a challenger, with the reason.
A held-out family (held_out_family) never plays; its panel column asks whether playing against the others
helps against a manipulation the detector never trained on. run_seeds repeats the game under several seeds.

Outputs under OUT: state.json (finished steps; a rerun resumes and refuses a different config), panel.json,
rounds.jsonl, summary.json, fakes/ (videos + fakes.jsonl), cache/ (face crops), scores/ (panel scores per
detector), probes/, round_XX/ (generator versions, candidate detector). MLflow: experiment `coevolve`, a
parent run and one nested run per round (report.py).
"""
from forensics.harness.config import CoevolveConfig
from forensics.harness.rounds import run_coevolution
from forensics.harness.seeds import run_seeds

__all__ = ["CoevolveConfig", "run_coevolution", "run_seeds"]
