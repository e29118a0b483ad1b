"""Image classifiers of the cascade: GoogLeNet and Network-in-Network, both with batch norm.

Both take (B, C, H, W) radiographs and return `(logits, embedding)`, where the embedding is
the output of the last average-pooling layer (1024-d at width 1.0), the vector that
initialises the RNN state (paper section 6.2).
"""
from __future__ import annotations

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
    """Shared interface: a body that ends in global average pooling, and a linear head."""

    embedding_dim: int
    fc: nn.Linear

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, embedding_dim), the last average-pooling output."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(x)                     # (B, E)
        logits = self.fc(self.dropout(embedding))     # (B, num_classes)
        return logits, embedding

    def replace_head(self, num_classes: int) -> None:
        """New classifier for a new label set (cascade iteration 1); the body is kept."""
        self.fc = nn.Linear(self.embedding_dim, num_classes).to(self.fc.weight.device)
        _init(self.fc)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.fc.parameters())

    def body_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.fc.parameters()}
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

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 1, 224, 224)
        x = self.maxpool1(self.conv1(x))                            # (B, 64, 56, 56)
        x = self.maxpool2(self.conv3(self.conv2(x)))                # (B, 192, 28, 28)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))    # (B, 480, 14, 14)
        x = self.inception4a(x)                                     # (B, 512, 14, 14)
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # (B, 528, 14, 14)
        x = self.maxpool4(self.inception4e(x))                      # (B, 832, 7, 7)
        x = self.inception5b(self.inception5a(x))                   # (B, 1024, 7, 7)
        return torch.flatten(self.avgpool(x), 1)                    # (B, 1024)


def _nin_block(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    """One NIN "mlpconv" block with BN: a k x k conv and two 1x1 convs, each conv-BN-ReLU."""
    layers: list[nn.Module] = []
    for i, (cin, k, s, p) in enumerate(((in_ch, kernel, stride, padding), (out_ch, 1, 1, 0), (out_ch, 1, 1, 0))):
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
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight), nn.init.zeros_(m.bias)
        _init(self.fc)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)                       # (B, 1024, h, w)
        return torch.flatten(self.avgpool(x), 1)   # (B, 1024)


def build_cnn(cfg: CNNConfig, num_classes: int) -> CascadeCNN:
    """The CNN described by `cfg` with a `num_classes`-way head."""
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    cls = {"googlenet": GoogLeNetBN, "nin": NINBN}.get(cfg.arch)
    if cls is None:
        raise ConfigError(f"cnn.arch must be 'googlenet' or 'nin', got {cfg.arch!r}")
    return cls(num_classes, in_channels=cfg.in_channels, width=cfg.width, dropout=cfg.dropout)
