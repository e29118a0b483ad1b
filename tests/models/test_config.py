"""Config dataclasses and the shipped presets."""
from __future__ import annotations

import pytest

from models.config import CascadeConfig, apply_overrides, available_presets, load_config, save_config
from models.errors import ConfigError


def test_presets_ship_and_validate():
    assert {"tiny", "paper"} <= set(available_presets())
    for name in ("tiny", "paper"):
        cfg = load_config(name)
        assert cfg.name == name
        cfg.validate()


def test_paper_preset_has_the_paper_settings():
    cfg = load_config("paper")
    assert (cfg.cnn.arch, cfg.cnn.width, cfg.cnn.input_size, cfg.cnn.resize) == ("googlenet", 1.0, 224, 256)
    assert cfg.lstm.hidden_size == cfg.gru.hidden_size == 1024
    assert cfg.lstm.num_layers == cfg.gru.num_layers == 2
    assert (cfg.lstm.lr, cfg.lstm.lr_decay, cfg.lstm.decay_rate, cfg.lstm.dropout) == (2e-3, 0.97, 0.95, 0.0)
    assert (cfg.gru.lr, cfg.gru.lr_decay, cfg.gru.decay_rate) == (1e-4, 0.99, 0.99)
    assert cfg.gru.dropout > 0
    assert cfg.cnn_train.batch_size == cfg.lstm.batch_size == cfg.gru.batch_size == 50
    assert cfg.cnn_train.finetune_body_lr_scale == 0.1
    assert cfg.lstm.max_words == 5


def test_tiny_preset_is_small():
    cfg = load_config("tiny")
    assert cfg.cnn.width < 1.0 and cfg.cnn.arch == "resnet"
    # the whole 256 px rendering, but the 'fine' stem hands the residual stages the maps of a 128 px image
    assert cfg.cnn.input_size == 256 and cfg.cnn.stem == "fine"
    assert cfg.iterations == 2 and cfg.num_threads == 2 and cfg.cnn_train.concept_weight > 0
    assert cfg.cnn_train.shift > 0 and cfg.ship == "best_val"   # augmentation, shipped by validation


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown key.*'widht'.*valid"):
        CascadeConfig.from_dict({"cnn": {"widht": 0.5}})


def test_bad_choice_and_type_are_rejected():
    with pytest.raises(ConfigError, match="cnn.arch must be one of"):
        CascadeConfig.from_dict({"cnn": {"arch": "vgg"}})
    with pytest.raises(ConfigError, match="channels_last must be bool"):
        CascadeConfig.from_dict({"cnn_train": {"channels_last": 1}})
    with pytest.raises(ConfigError, match="schedule must be one of"):
        CascadeConfig.from_dict({"cnn_train": {"schedule": "linear"}})
    with pytest.raises(ConfigError, match="finetune_head_init must be one of"):
        CascadeConfig.from_dict({"cnn_train": {"finetune_head_init": "zeros"}})
    with pytest.raises(ConfigError, match="epochs must be int"):
        CascadeConfig.from_dict({"cnn_train": {"epochs": "many"}})


def test_overrides_and_round_trip(tmp_path):
    cfg = apply_overrides(load_config("tiny"), ["cnn_train.epochs=3", "cnn.arch=googlenet", "context_rnn=lstm"])
    assert (cfg.cnn_train.epochs, cfg.cnn.arch, cfg.context_rnn) == (3, "googlenet", "lstm")
    path = save_config(cfg, tmp_path / "c.json")
    again = load_config(path)
    assert again == cfg and again.fingerprint() == cfg.fingerprint()
    with pytest.raises(ConfigError, match="unknown key"):
        apply_overrides(cfg, ["cnn.nope=1"])


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_toml_round_trip(tmp_path, name):
    cfg = load_config(name)
    assert load_config(save_config(cfg, tmp_path / f"{name}.toml")) == cfg


def test_toml_config(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n[cnn]\narch = "nin"\nwidth = 0.25\n[gru]\nepochs = 3\n')
    cfg = load_config(path)
    assert (cfg.name, cfg.cnn.arch, cfg.cnn.width, cfg.gru.epochs, cfg.gru.cell) == ("mine", "nin", 0.25, 3, "gru")


def test_fingerprint_tracks_model_shape_not_name():
    a = load_config("tiny")
    b = apply_overrides(a, ['name="other"'])
    c = apply_overrides(a, ["cnn.width=0.25"])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        load_config("huge")
