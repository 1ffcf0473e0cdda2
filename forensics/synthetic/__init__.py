"""The synthetic face world: procedural talking-head videos with exact ground truth.

Identities are parameter vectors, clips are smooth trajectories of pose and expression, and every frame
comes with its face box, 68 iBUG landmarks, pose and expression. Faces are ray traced from a signed
distance head with numpy; a face detector nobody here trained (MTCNN) is the judge of realism
(``mtcnn_agreement``; ``python -m benchmarks.synthetic`` records it).
"""
from forensics.synthetic.agreement import five_points, mtcnn_agreement
from forensics.synthetic.camera import FrameState
from forensics.synthetic.identity import Identity, identity_name, sample_identity
from forensics.synthetic.render import FrameTruth, render_frame
from forensics.synthetic.scene import SceneConfig, sample_scene
from forensics.synthetic.sheet import identity_sheet
from forensics.synthetic.trajectory import MotionLimits, video_trajectory
from forensics.synthetic.video import VideoConfig, render_video, video_scene
from forensics.synthetic.world import WorldConfig, generate_world, load_truth, world_identity

__all__ = [
    "Identity", "sample_identity", "identity_name", "world_identity",
    "FrameState", "FrameTruth", "SceneConfig", "sample_scene", "VideoConfig", "MotionLimits", "WorldConfig",
    "render_frame", "video_trajectory", "render_video", "video_scene", "generate_world", "load_truth",
    "identity_sheet", "mtcnn_agreement", "five_points",
]
