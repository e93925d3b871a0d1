"""DIIT's Keras 3 layers, one concept per module."""
from diit_tf.layers.cross import CrossLayer
from diit_tf.layers.discriminator import DomainDiscriminator
from diit_tf.layers.domain_tag import DomainTag
from diit_tf.layers.feature_embedding import FeatureEmbedding
from diit_tf.layers.gating_aggregator import GatingAggregator
from diit_tf.layers.gradient_reversal import GradientReversal
from diit_tf.layers.mapper import Mapper

__all__ = ["CrossLayer", "DomainDiscriminator", "DomainTag", "FeatureEmbedding", "GatingAggregator", "GradientReversal", "Mapper"]
