"""Shapes and forward passes of the CNNs on CPU."""
from __future__ import annotations

import pytest
import torch

from models.cnn import NINBN, GoogLeNetBN, build_cnn
from models.config import CNNConfig
from models.errors import ConfigError


@pytest.mark.parametrize("cls", [GoogLeNetBN, NINBN])
def test_full_width_networks_embed_1024_from_one_channel_224(cls):
    model = cls(num_classes=17).eval()
    with torch.no_grad():
        logits, embedding = model(torch.randn(2, 1, 224, 224))
    assert logits.shape == (2, 17)
    assert embedding.shape == (2, 1024) and model.embedding_dim == 1024
    assert torch.isfinite(logits).all()


def test_googlenet_is_torchvisions_with_batch_norm_and_no_aux_heads():
    model = GoogLeNetBN(num_classes=5)
    assert model.conv1.conv.in_channels == 1
    assert isinstance(model.conv1.bn, torch.nn.BatchNorm2d)
    assert not any("aux" in name for name, _ in model.named_modules())
    # the inception tower of torchvision's GoogLeNet: 5b concatenates 384 + 384 + 128 + 128 channels
    assert model.inception5b.branch1.conv.out_channels == 384


@pytest.mark.parametrize("arch", ["googlenet", "nin"])
def test_narrow_networks_for_cpu(arch):
    model = build_cnn(CNNConfig(arch=arch, width=0.125, input_size=64, resize=64), num_classes=4)
    logits, embedding = model(torch.randn(3, 1, 64, 64))
    assert logits.shape == (3, 4) and embedding.shape == (3, model.embedding_dim)
    assert model.embedding_dim < 1024
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_embedding_is_the_last_average_pool_and_head_is_linear_on_it():
    model = build_cnn(CNNConfig(arch="nin", width=0.125), num_classes=3).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        logits, embedding = model(x)
        pooled = model.features(x).mean(dim=(2, 3))
    assert torch.allclose(embedding, pooled, atol=1e-5)
    assert torch.allclose(logits, model.fc(embedding), atol=1e-5)


def test_replace_head_keeps_the_body():
    model = build_cnn(CNNConfig(arch="googlenet", width=0.125), num_classes=3).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        _, before = model(x)
    body = {id(p) for p in model.body_parameters()}
    model.replace_head(9)
    with torch.no_grad():
        logits, after = model(x)
    assert logits.shape == (2, 9) and model.num_classes == 9
    assert torch.equal(before, after)
    assert {id(p) for p in model.body_parameters()} == body
    assert not body & {id(p) for p in model.head_parameters()}


def test_replace_head_can_start_each_new_label_from_its_parent_row():
    """Iteration 1's warm start: clusters of label L begin with L's logit; a new label starts fresh."""
    model = build_cnn(CNNConfig(arch="resnet", width=0.125, depth=1), num_classes=3).eval()
    x = torch.randn(4, 1, 64, 64)
    with torch.no_grad():
        old_logits, _ = model(x)
    model.replace_head(4, parents=[2, 0, 0, None])
    with torch.no_grad():
        logits, _ = model(x)
    assert torch.allclose(logits[:, 0], old_logits[:, 2], atol=1e-5)
    assert torch.allclose(logits[:, 1], old_logits[:, 0], atol=1e-5)
    assert torch.allclose(logits[:, 2], old_logits[:, 0], atol=1e-5)
    assert not torch.allclose(logits[:, 3], old_logits[:, 1], atol=1e-3)
    with pytest.raises(ConfigError, match="2 parents for 4 labels"):
        model.replace_head(4, parents=[0, 1])


def test_three_channel_input_and_bad_arch():
    model = build_cnn(CNNConfig(arch="nin", width=0.125, in_channels=3), num_classes=2)
    assert model(torch.randn(2, 3, 64, 64))[0].shape == (2, 2)
    with pytest.raises(ConfigError):
        build_cnn(CNNConfig(arch="vgg"), 2)


def test_small_resnet_shapes_depth_and_width():
    model = build_cnn(CNNConfig(arch="resnet", width=0.25, depth=1, input_size=96, resize=96), num_classes=5)
    logits, embedding = model(torch.randn(2, 1, 96, 96))
    assert logits.shape == (2, 5) and embedding.shape == (2, 128) == (2, model.embedding_dim)
    assert model.feature_maps(torch.randn(1, 1, 96, 96)).shape == (1, 128, 3, 3)   # stride 32
    deeper = build_cnn(CNNConfig(arch="resnet", width=0.25, depth=2), num_classes=5)
    assert sum(p.numel() for p in deeper.parameters()) > sum(p.numel() for p in model.parameters())


def test_channels_last_gives_the_same_outputs():
    model = build_cnn(CNNConfig(arch="resnet", width=0.25, depth=1, input_size=64, resize=64), num_classes=3).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        before, _ = model(x)
        model.use_channels_last(True)
        after, _ = model(x)
    assert model.channels_last and torch.allclose(before, after, atol=1e-4)


def test_concept_head_is_trained_with_the_body_and_kept_by_replace_head():
    model = build_cnn(CNNConfig(arch="resnet", width=0.125, depth=1), num_classes=3)
    with pytest.raises(ConfigError, match="no concept head"):
        model.concept_logits(torch.zeros(1, model.embedding_dim))
    model.add_concept_head(7)
    _, embedding = model(torch.randn(2, 1, 64, 64))
    assert model.concept_logits(embedding).shape == (2, 7) and model.num_concepts == 7
    heads = {id(p) for p in model.head_parameters()}
    assert {id(p) for p in model.concept_head.parameters()} <= heads
    assert not heads & {id(p) for p in model.body_parameters()}
    head = model.concept_head
    model.replace_head(9)
    assert model.concept_head is head and model.num_classes == 9


def test_channels_last_is_skipped_for_layers_under_8_channels():
    """torch 2.14.1 aborted (heap corruption) in the NHWC backward of 4-channel convolutions."""
    narrow = build_cnn(CNNConfig(arch="resnet", width=0.0625, depth=1), num_classes=3).use_channels_last(True)
    assert not narrow.channels_last
    logits, _ = narrow(torch.randn(3, 1, 64, 64))
    logits.sum().backward()
    wide = build_cnn(CNNConfig(arch="resnet", width=0.125, depth=1), num_classes=3).use_channels_last(True)
    assert wide.channels_last


def test_fine_stem_reads_a_twice_larger_image_into_the_same_first_stage_maps():
    """stem 'fine' at 256 px: the first residual stage sees the 32x32 maps the 'pool' stem gives at 128 px."""
    pool = build_cnn(CNNConfig(arch="resnet", width=0.5, depth=1, input_size=128, resize=128), num_classes=3)
    fine = build_cnn(CNNConfig(arch="resnet", width=0.5, depth=1, input_size=256, resize=256, stem="fine"),
                     num_classes=3)
    first_maps = (2, 32, 32, 32)
    assert pool.stem(torch.randn(2, 1, 128, 128)).shape == fine.stem(torch.randn(2, 1, 256, 256)).shape == first_maps
    logits, embedding = fine(torch.randn(2, 1, 256, 256))
    assert logits.shape == (2, 3) and embedding.shape == (2, 256)
    assert fine.feature_maps(torch.randn(1, 1, 256, 256)).shape == (1, 256, 4, 4)
    logits.sum().backward()
    assert all(p.grad is not None for p in fine.parameters() if p.requires_grad)
    with pytest.raises(ConfigError, match="cnn.stem"):
        CNNConfig(arch="resnet", stem="wide").validate()
