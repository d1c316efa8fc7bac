"""Metrics of gan3d: FID, KID, ID, RE, DE, PE, and the estimators DE/PE use.

Every metric uses only the generator interface (``z_dim``, ``mapping``, ``synthesis``, ``forward``,
``pose_sampler``), draws each batch's latents and poses from a generator seeded from ``seed`` and the
batch's index, and loads its networks from user-given weight files (nothing is downloaded). Under
``torch.distributed`` the ranks share the batches and every rank returns the one-process value
(:mod:`~.distributed`).

=================  ==========================================  ====================================
registered name    class                                       returns
=================  ==========================================  ====================================
``fid``            :class:`~.fid.FIDEvaluator`                 ``fid``
``kid``            :class:`~.kid.KIDEvaluator`                 ``kid``
``identity``       :class:`~.identity.IdentityEvaluator`       ``id``
``reprojection``   :class:`~.reprojection.ReprojectionErrorEvaluator`  ``re``, ``re_covisible``
``depth``          :class:`~.depth_pose.DepthErrorEvaluator`   ``de``
``pose``           :class:`~.depth_pose.PoseErrorEvaluator`    ``pe``, ``pe_yaw_deg``, ``pe_polar_deg``,
                                                               ``pe_yaw_slope``, ``pe_polar_slope``,
                                                               ``pe_yaw_consistency``,
                                                               ``pe_yaw_offset_deg``
=================  ==========================================  ====================================

Estimators (family ``estimator``): ``trained``, ``face_reconstruction``.
"""

from .depth_pose import DepthErrorEvaluator, PoseErrorEvaluator
from .estimators import FaceReconstructionEstimator, TrainedEstimator
from .fid import FIDEvaluator
from .identity import IdentityEvaluator
from .kid import KIDEvaluator
from .reprojection import ReprojectionErrorEvaluator

__all__ = [
    "FIDEvaluator",
    "KIDEvaluator",
    "IdentityEvaluator",
    "ReprojectionErrorEvaluator",
    "DepthErrorEvaluator",
    "PoseErrorEvaluator",
    "TrainedEstimator",
    "FaceReconstructionEstimator",
]
