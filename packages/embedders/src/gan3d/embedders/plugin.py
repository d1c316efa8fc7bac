"""The gan3d plugin of gan3d-embedders: registers its implementations."""

from __future__ import annotations

from gan3d.core import hookimpl


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-embedders's implementations."""
    from .feature_decoders.giraffe_field import GiraffeFieldDecoder
    from .feature_decoders.graf_nerf import GRAFNeRFDecoder
    from .feature_decoders.gram_radiance import GRAMRadianceDecoder
    from .feature_decoders.osg import OSGDecoder
    from .feature_decoders.siren_film import SirenFiLMDecoder
    from .feature_decoders.stylenerf_mlp import StyleNeRFDecoder
    from .feature_decoders.stylesdf_siren import StyleSDFSirenDecoder
    from .feature_decoders.volumegan_mlp import VolumeGANDecoder
    from .point_embedders.coordinate import CoordinateEmbedder
    from .point_embedders.inverted_sphere import InvertedSphereEmbedder
    from .point_embedders.position_encoded import PositionEncodedEmbedder
    from .point_embedders.triplane import TriplaneEmbedder
    from .point_embedders.volume import VolumeEmbedder
    from .stochasticity_mappers.giraffe import GiraffeMapper
    from .stochasticity_mappers.identity import IdentityMapper
    from .stochasticity_mappers.pigan import PiGANMappingNetwork
    from .stochasticity_mappers.stylegan2 import StyleGAN2Mapper
    from .stochasticity_mappers.stylesdf import StyleSDFMappingNetwork

    registry.add("stochasticity_mapper", "pigan", PiGANMappingNetwork)
    registry.add("point_embedder", "coordinate", CoordinateEmbedder)
    registry.add("point_embedder", "volume", VolumeEmbedder)
    registry.add("feature_decoder", "siren_film", SirenFiLMDecoder)
    registry.add("stochasticity_mapper", "stylegan2", StyleGAN2Mapper)
    registry.add("point_embedder", "triplane", TriplaneEmbedder)
    registry.add("feature_decoder", "eg3d_osg", OSGDecoder)
    registry.add("feature_decoder", "stylenerf_mlp", StyleNeRFDecoder)
    registry.add("feature_decoder", "stylesdf_siren", StyleSDFSirenDecoder)
    registry.add("stochasticity_mapper", "giraffe", GiraffeMapper)
    registry.add("feature_decoder", "giraffe_field", GiraffeFieldDecoder)
    registry.add("stochasticity_mapper", "stylesdf", StyleSDFMappingNetwork)
    registry.add("point_embedder", "position_encoded", PositionEncodedEmbedder)
    registry.add("feature_decoder", "volumegan_mlp", VolumeGANDecoder)
    registry.add("feature_decoder", "graf_nerf", GRAFNeRFDecoder)
    registry.add("stochasticity_mapper", "identity", IdentityMapper)
    registry.add("feature_decoder", "gram_radiance", GRAMRadianceDecoder)
    registry.add("point_embedder", "inverted_sphere", InvertedSphereEmbedder)


@hookimpl
def gan3d_migrate_checkpoint(state: dict, from_format: int) -> None:
    """Format 1 -> 2: ``stylesdf_siren`` lost its ``sdf_gradients`` option (the objective requests the
    gradients now)."""
    if from_format != 1:
        return
    import json

    recipe = json.loads(state["recipe"])
    for spec in recipe.get("modules", {}).values():
        if spec.get("name") == "stylesdf_siren":
            spec.get("kwargs", {}).pop("sdf_gradients", None)
    state["recipe"] = json.dumps(recipe)
