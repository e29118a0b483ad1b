"""Typed configuration of the cascade (CNN, RNNs, training runs) and its named presets."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from models.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


@dataclass
class CNNConfig:
    """Image classifier shape and input geometry."""

    arch: str = "googlenet"          # "googlenet" (GoogLeNet-BN) | "nin" (NIN-BN) | "resnet" (small ResNet-BN)
    width: float = 1.0               # channel multiplier; 1.0 = the published network (1024-d embedding)
    depth: int = 2                   # resnet only: residual blocks per stage (2 = ResNet-18's layout)
    stem: str = "pool"               # resnet only: "pool" (5x5/2 conv + 3x3/2 max pool) | "patch" (7x7/4 conv)
    #                                  | "fine" (3x3/2 conv + 2x2 max pool + 3x3/2 conv: 256 px at 128 px cost)
    in_channels: int = 1             # radiographs are grey
    resize: int = 256                # images are first resized to resize x resize
    input_size: int = 224            # what the network sees (random/centre crop, or whole resize)
    crop: str = "none"               # "random": random input_size crops of the resize image;
    #                                  "none": the paper's no-crop variant, whole image duplicated
    dropout: float = 0.0             # before the classifier; the paper removes it (BN paper advice)

    def validate(self) -> None:
        _choice("cnn.arch", self.arch, ("googlenet", "nin", "resnet"))
        _choice("cnn.stem", self.stem, ("pool", "patch", "fine"))
        if not 1 <= self.depth <= 4:
            raise ConfigError(f"cnn.depth must be in 1..4, got {self.depth}")
        _choice("cnn.crop", self.crop, ("none", "random"))
        if not 0.0 < self.width <= 4.0:
            raise ConfigError(f"cnn.width must be in (0, 4], got {self.width}")
        if self.input_size < 32 or self.resize < self.input_size:
            raise ConfigError(f"need 32 <= cnn.input_size <= cnn.resize, got {self.input_size}, {self.resize}")
        if self.in_channels not in (1, 3):
            raise ConfigError(f"cnn.in_channels must be 1 or 3, got {self.in_channels}")


@dataclass
class TrainConfig:
    """CNN training: data dropout sampler, optimiser, step-down schedule, iteration-1 fine-tune."""

    epochs: int = 100
    batch_size: int = 50
    optimizer: str = "sgd"           # "sgd" | "adam"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_steps: int = 3                # step the rate down every epochs / lr_steps epochs
    lr_gamma: float = 0.67           # the paper: x0.5 (NIN), -33% (GoogLeNet)
    augment: int = 4                 # each diseased image appears >= augment times per epoch
    normal_ratio: float = 1.0        # normals per epoch = normal_ratio x a disease label's quota
    normal_share: float = 0.0        # > 0: normals are this fraction of every epoch instead
    max_per_label: int = 0           # cap on a disease label's per-epoch quota (0 = none)
    finetune_epochs: int = 50        # iteration 1
    finetune_body_lr_scale: float = 0.1  # iteration 1: lower rate for all but the new head
    finetune_max_per_label: int = -1  # iteration 1's cap on a label's quota (-1 = max_per_label)
    finetune_head_init: str = "random"  # iteration 1's new head: "random", or "parent" (a cluster of label L
    #                                     starts from L's iteration-0 row)
    schedule: str = "step"           # "step" (lr_gamma every epochs / lr_steps) | "onecycle" (warm-up, cosine down)
    shift: int = 0                   # augmentation: random translation of up to +-shift pixels (no flips)
    intensity: float = 0.0           # augmentation: random contrast/brightness jitter of up to +-intensity
    concept_weight: float = 0.0      # > 0: train the multi-label concept head jointly, loss weight
    concept_extra: float = 0.0       # iteration 0: add this many training images WITHOUT a mined label per
    #                                  labelled one to every batch (concept loss only; needs concept_weight)
    channels_last: bool = False      # NHWC memory format (can speed up convolutions on a CPU)

    def validate(self) -> None:
        _choice("cnn_train.optimizer", self.optimizer, ("sgd", "adam", "adamw"))
        _choice("cnn_train.schedule", self.schedule, ("step", "onecycle"))
        _choice("cnn_train.finetune_head_init", self.finetune_head_init, ("random", "parent"))
        if self.concept_extra < 0:
            raise ConfigError(f"cnn_train.concept_extra must be >= 0, got {self.concept_extra}")
        if self.shift < 0 or not 0.0 <= self.intensity < 1.0 or self.concept_weight < 0:
            raise ConfigError(f"cnn_train.shift must be >= 0, intensity in [0, 1), concept_weight >= 0; got "
                              f"{self.shift}, {self.intensity}, {self.concept_weight}")
        _positive("cnn_train", epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                  augment=self.augment, lr_steps=self.lr_steps)
        if self.normal_ratio < 0 or self.finetune_epochs < 0:
            raise ConfigError("cnn_train.normal_ratio and finetune_epochs must be >= 0")
        if not 0.0 <= self.normal_share < 1.0:
            raise ConfigError(f"cnn_train.normal_share must be in [0, 1), got {self.normal_share}")


@dataclass
class RNNConfig:
    """One annotation decoder (LSTM or GRU) and its optimiser (char-rnn style RMSprop by default)."""

    cell: str = "lstm"               # "lstm" | "gru"
    num_layers: int = 2
    hidden_size: int = 0             # 0 = the CNN embedding size (the paper: state size = embedding)
    word_dim: int = 0                # 0 = hidden_size
    dropout: float = 0.0             # between layers
    max_words: int = 5               # unroll at most this many steps
    epochs: int = 50
    batch_size: int = 50
    optimizer: str = "rmsprop"       # "rmsprop" | "adam"
    lr: float = 2e-3
    lr_decay: float = 0.97           # multiplicative, per epoch
    decay_rate: float = 0.95         # RMSprop smoothing (alpha)
    grad_clip: float = 5.0

    def validate(self) -> None:
        _choice("rnn.cell", self.cell, ("lstm", "gru"))
        _choice("rnn.optimizer", self.optimizer, ("rmsprop", "adam"))
        _positive(f"{self.cell}", num_layers=self.num_layers, max_words=self.max_words,
                  epochs=self.epochs, batch_size=self.batch_size, lr=self.lr)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{self.cell}.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class CascadeConfig:
    """A whole run: CNN, its training, both RNNs, and the relabelling between iterations."""

    name: str = "custom"
    notes: str = ""
    seed: int = 0
    cnn: CNNConfig = field(default_factory=CNNConfig)
    cnn_train: TrainConfig = field(default_factory=TrainConfig)
    lstm: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm"))
    gru: RNNConfig = field(default_factory=lambda: RNNConfig(
        cell="gru", lr=1e-4, lr_decay=0.99, decay_rate=0.99, dropout=0.9))
    iterations: int = 2              # 1 = iteration 0 only; 2 = with the relabelled second round
    context_rnn: str = "gru"         # which decoder gives the joint image/text context vectors
    ship: str = "last"               # cascade.pt: "last" iteration (the paper), or "best_val": the iteration
    #                                  with the higher validation 17-label accuracy (ties: the last)
    cases_per_cluster: int = 50      # k = round(n / cases_per_cluster)
    split_exclude: tuple[str, ...] = ("normal",)  # labels never split (and left out of mean+std)
    normal_label: str = "normal"
    relabel_scope: str = "first_term"  # iteration-1 base labels: "label" (the mined single-label
    #                                    patterns) or "first_term" (paper 7: first-mentioned term)
    min_label_cases: int = 30        # first_term scope: terms with fewer train+val images are left out
    ignore_terms: tuple[str, ...] = ("no indexing", "technical quality of image unsatisfactory")
    plot_label: str = ""             # label whose context vectors are mapped in 2-D ("" = most split)
    plot_method: str = "pca"         # "pca" | "tsne"
    eval_batch_size: int = 200
    num_threads: int = 0             # torch threads on CPU; 0 = torch's default
    concept_min_positives: int = 30  # concept head: keys with at least this many training images

    def validate(self) -> None:
        self.cnn.validate()
        self.cnn_train.validate()
        self.lstm.validate()
        self.gru.validate()
        if self.lstm.cell != "lstm" or self.gru.cell != "gru":
            raise ConfigError("lstm.cell must be 'lstm' and gru.cell 'gru'")
        _choice("context_rnn", self.context_rnn, ("lstm", "gru"))
        _choice("relabel_scope", self.relabel_scope, ("label", "first_term"))
        _choice("plot_method", self.plot_method, ("pca", "tsne"))
        _choice("ship", self.ship, ("last", "best_val"))
        if self.iterations not in (1, 2):
            raise ConfigError(f"iterations must be 1 or 2, got {self.iterations}")
        _positive("cascade", cases_per_cluster=self.cases_per_cluster, eval_batch_size=self.eval_batch_size)

    def rnn(self, cell: str) -> RNNConfig:
        """The decoder config of `cell` ('lstm' or 'gru')."""
        _choice("cell", cell, ("lstm", "gru"))
        return self.lstm if cell == "lstm" else self.gru

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["split_exclude"] = list(self.split_exclude)
        data["ignore_terms"] = list(self.ignore_terms)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CascadeConfig:
        """Build from a (possibly partial) dict; unknown keys are an error naming the valid ones."""
        cfg = _build(cls, data, "")
        cfg.split_exclude, cfg.ignore_terms = tuple(cfg.split_exclude), tuple(cfg.ignore_terms)
        cfg.validate()
        return cfg

    def fingerprint(self) -> str:
        """Short hash of everything that shapes the trained model (not name/notes)."""
        data = self.to_dict()
        for key in ("name", "notes", "plot_label", "plot_method", "eval_batch_size", "num_threads"):
            data.pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


_NESTED = {"cnn": CNNConfig, "cnn_train": TrainConfig, "lstm": RNNConfig, "gru": RNNConfig}


def _build(cls, data: dict[str, Any], where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a table/object, got {type(data).__name__}")
    valid = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where or 'config'}; valid: {sorted(valid)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if cls is CascadeConfig and key in _NESTED:
            base = asdict(getattr(cls(), key))
            base.update(value if isinstance(value, dict) else {})
            if not isinstance(value, dict):
                raise ConfigError(f"{key} must be a table/object")
            kwargs[key] = _build(_NESTED[key], base, key)
        else:
            kwargs[key] = _coerce(valid[key], value, f"{where + '.' if where else ''}{key}")
    return cls(**kwargs)


def _coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if kind.startswith("tuple"):
            return tuple(str(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {kind}, got {value!r}") from None
    return value


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{name} must be one of {list(valid)}, got {value!r}")


def _positive(where: str, **values: float) -> None:
    for key, value in values.items():
        if value <= 0:
            raise ConfigError(f"{where}.{key} must be > 0, got {value}")


def available_presets() -> list[str]:
    """Names of the preset files shipped in models/presets."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json")) + sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_config(name_or_path: str | Path) -> CascadeConfig:
    """Load a preset by name (`tiny`, `paper`) or a .json/.toml file path."""
    path = Path(name_or_path)
    if not path.suffix:
        candidates = [PRESETS_DIR / f"{name_or_path}.json", PRESETS_DIR / f"{name_or_path}.toml"]
        path = next((p for p in candidates if p.exists()), candidates[0])
        if not path.exists():
            raise ConfigError(f"unknown preset {str(name_or_path)!r}; valid: {available_presets()}")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e}") from e
    try:
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid {path.suffix[1:].upper()}: {e}") from e
    return CascadeConfig.from_dict(data)


def save_config(cfg: CascadeConfig, path: str | Path) -> Path:
    """Write `cfg` as TOML when the path ends in .toml, else as JSON (the format presets ship in)."""
    path = Path(path)
    data = cfg.to_dict()
    path.write_text(_to_toml(data) if path.suffix == ".toml" else json.dumps(data, indent=2) + "\n")
    return path


def _to_toml(data: dict[str, Any]) -> str:
    """TOML for a config dict: top-level values, then one [table] per section (JSON scalars are valid TOML)."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, values in data.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def apply_overrides(cfg: CascadeConfig, overrides: list[str]) -> CascadeConfig:
    """Return a copy with `section.key=value` overrides (JSON values, or bare strings) applied."""
    data = cfg.to_dict()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        target = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            target = target[part]
        if parts[-1] not in target:
            raise ConfigError(f"override {item!r}: unknown key {parts[-1]!r}; valid: {sorted(target)}")
        target[parts[-1]] = value
    return CascadeConfig.from_dict(data)
