"""gan3d.samplers: pose samplers, ray and point samplers, importance sampling.

Registered implementations (see ``plugin.py``): pose samplers ``spherical``
(:class:`~gan3d.samplers.spherical_pose_sampler.SphericalPoseSampler`) and ``dataset``
(:class:`~gan3d.samplers.dataset_pose_sampler.DatasetPoseSampler`); point sampler ``uniform``
(:class:`~gan3d.samplers.uniform_point_sampler.UniformPointSampler`, with importance sampling).
"""
