"""Image classifiers of the cascade: GoogLeNet, Network-in-Network and a small ResNet, all with batch norm.

Each takes (B, C, H, W) radiographs and returns `(logits, embedding)`, where the embedding is
the output of the last average-pooling layer (1024-d at width 1.0 for the paper's two, 512-d
for the ResNet), the vector that initialises the RNN state (paper section 6.2). `features(x)`
gives the last convolutional maps, which class activation maps (models.cam) read.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models import googlenet
from torchvision.models.googlenet import BasicConv2d, Inception

from models.config import CNNConfig
from models.errors import ConfigError

# torchvision's GoogLeNet inception table: name -> (in, 1x1, 3x3red, 3x3, 5x5red, 5x5, pool_proj)
_INCEPTIONS = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


def _scale(channels: int, width: float) -> int:
    return channels if width == 1.0 else max(4, int(round(channels * width)))


def _init_relu_net(module: nn.Module) -> None:
    """He initialisation of every convolution (fan out, ReLU), batch norm at identity."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _init(module: nn.Module) -> None:
    """torchvision's GoogLeNet initialisation (truncated normal weights, BN at identity)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class CascadeCNN(nn.Module):
    """Shared interface: a body that ends in global average pooling, a linear label head and an
    optional multi-label concept head (sigmoid per concept key) on the same embedding."""

    embedding_dim: int
    fc: nn.Linear
    concept_head: nn.Linear | None
    channels_last: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.register_module("concept_head", None)   # set by add_concept_head

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    @property
    def num_concepts(self) -> int:
        return 0 if self.concept_head is None else self.concept_head.out_features

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, embedding_dim, h, w), the maps that the last average pool reduces."""
        raise NotImplementedError

    def maps(self, x: torch.Tensor) -> torch.Tensor:
        """`feature_maps` in the module's memory format (channels-last when set)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.feature_maps(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, embedding_dim), the last average-pooling output."""
        return self.maps(x).mean(dim=(2, 3))                        # (B, E, h, w) -> (B, E)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(x)                     # (B, E)
        logits = self.fc(self.dropout(embedding))     # (B, num_classes)
        return logits, embedding

    def concept_logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """(B, E) embeddings -> (B, num_concepts) concept logits (sigmoid gives probabilities)."""
        if self.concept_head is None:
            raise ConfigError("this CNN has no concept head (trained with cnn_train.concept_weight = 0)")
        return self.concept_head(embedding)

    def add_concept_head(self, num_concepts: int) -> None:
        """A fresh multi-label head over `num_concepts` concept keys."""
        if num_concepts < 1:
            raise ConfigError(f"a concept head needs >= 1 concept, got {num_concepts}")
        self.concept_head = nn.Linear(self.embedding_dim, num_concepts).to(self.fc.weight.device)
        _init(self.concept_head)

    def use_channels_last(self, on: bool = True) -> CascadeCNN:
        """Store weights and run convolutions in NHWC (faster on CPUs with oneDNN); same results.

        Networks with a convolution of fewer than 8 output channels stay NCHW: torch 2.14.1's CPU
        NHWC backward corrupted the heap (abort) for such layers (width <= 0.1 ResNets in tests).
        """
        on = on and not any(isinstance(m, nn.Conv2d) and m.out_channels < 8 for m in self.modules())
        self.channels_last = on
        return self.to(memory_format=torch.channels_last if on else torch.contiguous_format)

    def replace_head(self, num_classes: int, parents: Sequence[int | None] | None = None) -> None:
        """New classifier for a new label set (cascade iteration 1); the body (and concept head) is kept.

        parents[j], when given and not None, is the row of the old head whose weights new label j starts
        from (a k-means cluster of label L starts as L), so fine-tuning begins from what iteration 0 knew.
        """
        old = self.fc
        self.fc = nn.Linear(self.embedding_dim, num_classes).to(old.weight.device)
        _init(self.fc)
        if parents is None:
            return
        if len(parents) != num_classes:
            raise ConfigError(f"replace_head: {len(parents)} parents for {num_classes} labels")
        with torch.no_grad():
            for j, i in enumerate(parents):
                if i is not None:
                    self.fc.weight[j].copy_(old.weight[i])
                    self.fc.bias[j].copy_(old.bias[i])

    def head_parameters(self) -> list[nn.Parameter]:
        """The label head and the concept head: trained at the full rate when the body is fine-tuned."""
        heads = list(self.fc.parameters())
        if self.concept_head is not None:
            heads += list(self.concept_head.parameters())
        return heads

    def body_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.parameters() if id(p) not in head]


class GoogLeNetBN(CascadeCNN):
    """torchvision's GoogLeNet (which has batch norm in every conv block), 1-channel input,
    no auxiliary heads, no pretrained weights; `width` < 1 narrows every layer for CPU runs."""

    def __init__(self, num_classes: int, in_channels: int = 1, width: float = 1.0, dropout: float = 0.0):
        super().__init__()
        net = googlenet(weights=None, aux_logits=False, init_weights=True, num_classes=num_classes,
                        dropout=dropout)
        c = lambda n: _scale(n, width)  # noqa: E731
        net.conv1 = BasicConv2d(in_channels, c(64), kernel_size=7, stride=2, padding=3)
        if width != 1.0:
            net.conv2 = BasicConv2d(c(64), c(64), kernel_size=1)
            net.conv3 = BasicConv2d(c(64), c(192), kernel_size=3, padding=1)
            in_ch = c(192)
            for name, (_, *chs) in _INCEPTIONS.items():
                scaled = [c(n) for n in chs]
                setattr(net, name, Inception(in_ch, *scaled))
                in_ch = scaled[0] + scaled[2] + scaled[4] + scaled[5]
            net.fc = nn.Linear(in_ch, num_classes)
        self.embedding_dim = net.fc.in_features
        for name in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b",
                     "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d",
                     "inception4e", "maxpool4", "inception5a", "inception5b", "avgpool", "dropout", "fc"):
            setattr(self, name, getattr(net, name))
        _init(self.conv1)
        if width != 1.0:
            _init(self)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 1, 224, 224)
        x = self.maxpool1(self.conv1(x))                            # (B, 64, 56, 56)
        x = self.maxpool2(self.conv3(self.conv2(x)))                # (B, 192, 28, 28)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))    # (B, 480, 14, 14)
        x = self.inception4a(x)                                     # (B, 512, 14, 14)
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # (B, 528, 14, 14)
        x = self.maxpool4(self.inception4e(x))                      # (B, 832, 7, 7)
        return self.inception5b(self.inception5a(x))                # (B, 1024, 7, 7)


def _nin_block(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    """One NIN "mlpconv" block with BN: a k x k conv and two 1x1 convs, each conv-BN-ReLU."""
    layers: list[nn.Module] = []
    for cin, k, s, p in ((in_ch, kernel, stride, padding), (out_ch, 1, 1, 0), (out_ch, 1, 1, 0)):
        layers += [nn.Conv2d(cin, out_ch, k, stride=s, padding=p, bias=False),
                   nn.BatchNorm2d(out_ch, eps=0.001), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class NINBN(CascadeCNN):
    """Network-in-Network (Lin et al.) for ImageNet-size input with batch norm after every conv.

    The last mlpconv block has 1024 channels and is globally average-pooled into the
    embedding, followed by a linear classifier (so both CNNs share the embedding interface).
    """

    def __init__(self, num_classes: int, in_channels: int = 1, width: float = 1.0, dropout: float = 0.0):
        super().__init__()
        c = lambda n: _scale(n, width)  # noqa: E731
        pool = lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            _nin_block(in_channels, c(96), 11, 4, 5), pool(),   # (B, 96, H/8, W/8)
            _nin_block(c(96), c(256), 5, 1, 2), pool(),         # (B, 256, H/16, W/16)
            _nin_block(c(256), c(384), 3, 1, 1), pool(),        # (B, 384, H/32, W/32)
            _nin_block(c(384), c(1024), 3, 1, 1),               # (B, 1024, H/32, W/32)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.embedding_dim = c(1024)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.embedding_dim, num_classes)
        _init_relu_net(self)
        _init(self.fc)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)                    # (B, 1, H, W) -> (B, 1024, H/32, W/32)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN) shortcut, then ReLU (He et al.)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetBN(CascadeCNN):
    """A small ResNet (ResNet-18's four stages of 64/128/256/512 channels x `width`, `depth` blocks each).

    stem 'pool': a 5x5 stride-2 convolution followed by a 3x3 stride-2 max pool (a max pool keeps
    small bright findings such as calcified granulomas). stem 'patch': one 7x7 stride-4 convolution,
    which reads a twice larger image at about the same cost. stem 'fine': for an image twice as large
    (256 px), a 3x3 stride-2 convolution of a quarter of the channels (at least 8), a 2x2 max pool and a 3x3 stride-2
    convolution, so the first stage sees 32x32 maps as the 'pool' stem's at 128 px and the rest of the
    network costs the same, while every stored pixel is read. The maps are H/32 with 'pool' and
    'patch', H/64 with 'fine'.
    """

    STAGES = (64, 128, 256, 512)

    def __init__(self, num_classes: int, in_channels: int = 1, width: float = 1.0, dropout: float = 0.0,
                 depth: int = 2, stem: str = "pool"):
        super().__init__()
        c = lambda n: _scale(n, width)  # noqa: E731
        ch = c(self.STAGES[0])
        if stem == "patch":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, ch, 7, stride=4, padding=3, bias=False),
                                      nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        elif stem == "fine":
            half = max(ch // 4, 8)
            self.stem = nn.Sequential(nn.Conv2d(in_channels, half, 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(half), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                                      nn.Conv2d(half, ch, 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        elif stem == "pool":
            self.stem = nn.Sequential(nn.Conv2d(in_channels, ch, 5, stride=2, padding=2, bias=False),
                                      nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, stride=2, padding=1))
        else:
            raise ConfigError(f"resnet stem must be 'pool', 'patch' or 'fine', got {stem!r}")
        stem = ch
        blocks: list[nn.Module] = []
        in_ch = stem
        for i, channels in enumerate(self.STAGES):
            for j in range(depth):
                blocks.append(BasicBlock(in_ch, c(channels), stride=2 if (i > 0 and j == 0) else 1))
                in_ch = c(channels)
        self.layers = nn.Sequential(*blocks)
        self.embedding_dim = in_ch
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.embedding_dim, num_classes)
        _init_relu_net(self)
        for block in self.layers:       # zero-init the last BN of each block: every block starts as identity
            nn.init.zeros_(block.bn2.weight)
        _init(self.fc)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                # (B, 1, H, W) -> (B, 64w, H/4, W/4) ('fine': H/8, W/8)
        return self.layers(x)           # -> (B, 512w, H/32, W/32) ('fine': H/64, W/64)


def build_cnn(cfg: CNNConfig, num_classes: int) -> CascadeCNN:
    """The CNN described by `cfg` with a `num_classes`-way head."""
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    cls = {"googlenet": GoogLeNetBN, "nin": NINBN, "resnet": ResNetBN}.get(cfg.arch)
    if cls is None:
        raise ConfigError(f"cnn.arch must be 'googlenet', 'nin' or 'resnet', got {cfg.arch!r}")
    if cls is ResNetBN:
        return ResNetBN(num_classes, in_channels=cfg.in_channels, width=cfg.width, dropout=cfg.dropout,
                        depth=cfg.depth, stem=cfg.stem)
    return cls(num_classes, in_channels=cfg.in_channels, width=cfg.width, dropout=cfg.dropout)
