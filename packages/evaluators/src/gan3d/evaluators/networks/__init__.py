"""Feature networks the metrics use, written to load the published weight files.

* :class:`~.inception.FIDInceptionV3`: the TensorFlow FID Inception-v3 as ported by pytorch-fid
  (``pt_inception-2015-12-05-6726825d.pth``).
* :class:`~.iresnet.IResNet`: insightface ``arcface_torch`` IResNet-50/100 (``backbone.pth``).
* :class:`~.face_reconstruction.ReconNet`: Deep3DFaceRecon_pytorch's ResNet-50 coefficient regressor
  (``epoch_20.pth``, key ``net_recon``).
* :class:`~.depth_pose_net.DepthPoseNet`: the small CNN the toolkit trains itself for DE/PE.

Every file is read with ``torch.load(weights_only=True)`` through :mod:`.weights`.
"""

from .weights import WeightsError, file_digest, load_weights

__all__ = ["WeightsError", "file_digest", "load_weights"]
