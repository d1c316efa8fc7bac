"""gan3d.embedders: point embedders, feature decoders, stochasticity mappers.

Registered names (family: name -> class, source):

* ``stochasticity_mapper``: ``pigan`` -> :class:`~.stochasticity_mappers.pigan.PiGANMappingNetwork`
  (pi-GAN; ``ws [B, num_film_layers, 2 * film_dim]``, each row frequencies then phase shifts);
  ``stylegan2`` -> :class:`~.stochasticity_mappers.stylegan2.StyleGAN2Mapper` (core's MappingNetwork,
  optional camera conditioning as in EG3D).
* ``point_embedder``: ``coordinate`` (raw xyz, ``box_warp`` scaling, NeRF positional encoding),
  ``triplane`` (EG3D; ``plane_axes`` ``'official'`` by default, ``'corrected'`` optional),
  ``volume`` (VolumeGAN feature volume plus positional encoding).
* ``feature_decoder`` -- what each puts in ``Field.features`` (the generator's ``image_range``):

  ==================  ===========================================================  ==============
  name                features                                                     image_range
  ==================  ===========================================================  ==============
  ``siren_film``      RGB ``[.., 3]``, sigmoid, in ``[0, 1]`` (pi-GAN)             ``'unit'``
  ``eg3d_osg``        ``output_dim`` (32) channels, first three RGB, widened       ``'unit'``
                      sigmoid in ``(-0.001, 1.001)``; EG3D feeds them to its
                      super-resolution as they are
  ``stylenerf_mlp``   ``[rgb (3), features (output_dim)]``, raw / unbounded        ``'tanh'``
                      (StyleNeRF has no final activation)
  ==================  ===========================================================  ==============

  Every decoder returns ``density`` raw; the volume renderer applies the method's activation.
"""
