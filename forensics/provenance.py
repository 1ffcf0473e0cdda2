"""What a model was trained on, as records and reports name it (`model.trained_on`).

detectors.footage decides it from the training data and keeps it in the checkpoint; `forensics detect` puts it
in every record, and the report warns when it is SYNTHETIC_ONLY: such a model never saw a real face, so its
score on real footage is not a validated probability.
"""
SYNTHETIC_ONLY = "synthetic faces only"
REAL_FACES = "real faces"
