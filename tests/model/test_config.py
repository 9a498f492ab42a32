import pytest

from model.config import SEED_SNAPSHOT_EPOCHS, ConfigError, TrainConfig


def test_defaults_are_the_seeds():
    c = TrainConfig()
    assert (c.image_size, c.nz, c.ngf, c.ndf, c.epochs, c.batch_size) == (96, 100, 64, 64, 200, 256)
    assert (c.lr, c.beta1, c.beta2, c.d_every, c.g_every) == (2e-4, 0.5, 0.999, 1, 5)
    assert c.snapshot_epochs == SEED_SNAPSHOT_EPOCHS == (1, 5, 10, 20, 50, 100, 200)
    assert (c.seed, c.grid_images, c.grid_nrow) == (0, 64, 8)


def test_snapshot_epochs_past_the_end_are_dropped_and_the_last_is_added():
    assert TrainConfig(epochs=30).effective_snapshot_epochs() == (1, 5, 10, 20, 30)
    assert TrainConfig(epochs=200).effective_snapshot_epochs() == (1, 5, 10, 20, 50, 100, 200)


@pytest.mark.parametrize("field,value,words", [
    ("batch_size", 0, "batch_size must be >= 2"),
    ("ngf", 100_000, "ngf must be <= 256"),
    ("lr", 0.0, "lr must be > 0"),
    ("epochs", 2.5, "epochs must be an integer"),
    ("precision", "fp16", "precision must be one of auto, bf16, fp32"),
    ("compile", "yes", "compile must be true or false"),
    ("image_size", 64, "image_size must be >= 96"),
    ("snapshot_epochs", (0, 5), "start at 1"),
])
def test_bad_values_are_refused_with_the_field_named(field, value, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**{field: value})


def test_unknown_fields_are_refused():
    with pytest.raises(ConfigError, match="unknown config field"):
        TrainConfig.from_dict({"ngf": 32, "learning_rate": 1})


def test_round_trip_through_a_dict():
    c = TrainConfig(ngf=32, snapshot_epochs=(1, 2))
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_only_a_grown_epoch_count_is_resume_compatible():
    stored = TrainConfig(epochs=10)
    assert TrainConfig(epochs=20).resume_conflicts(stored) == []
    assert TrainConfig(epochs=5).resume_conflicts(stored) == ["epochs"]
    assert TrainConfig(epochs=10, ngf=32).resume_conflicts(stored) == ["ngf"]


def test_new_options_default_to_the_seeds_behaviour():
    c = TrainConfig()
    assert (c.loss, c.spectral_norm, c.arch, c.diffaugment, c.r1_gamma) == ("bce", False, "seed", "", 0.0)
    assert (c.lr_d, c.lr_g, c.d_lr, c.g_lr) == (0.0, 0.0, 2e-4, 2e-4)
    assert c.d_batchnorm and c.augmentations == ()


def test_a_config_stored_before_the_options_existed_still_loads_as_the_seeds():
    old = {k: v for k, v in TrainConfig(ngf=32).to_dict().items()
           if k not in ("loss", "spectral_norm", "arch", "diffaugment", "r1_gamma", "lr_d", "lr_g")}
    assert TrainConfig.from_dict(old) == TrainConfig(ngf=32)


def test_separate_learning_rates_fall_back_to_lr():
    c = TrainConfig(lr=1e-3, lr_d=4e-4)
    assert (c.d_lr, c.g_lr) == (4e-4, 1e-3)


@pytest.mark.parametrize("field,value,words", [
    ("loss", "mse", "loss must be one of bce, hinge, wgan-gp"),
    ("arch", "vit", "arch must be one of seed, resnet"),
    ("loss", 3, "loss must be a string"),
    ("diffaugment", "blur", "diffaugment must be a comma list"),
    ("diffaugment", "color,color", "diffaugment must be a comma list"),
    ("r1_gamma", -1.0, "r1_gamma must be >= 0"),
    ("lr_d", 2.0, "lr_d must be <= 1.0"),
])
def test_bad_option_values_are_refused_with_the_field_named(field, value, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**{field: value})


def test_diffaugment_is_stored_in_one_written_form():
    from model.config import diffaugment_choices

    assert TrainConfig(diffaugment="cutout, Colour").diffaugment == "color,cutout"
    assert TrainConfig(diffaugment="none").diffaugment == ""
    assert TrainConfig(diffaugment="translation,color").augmentations == ("color", "translation")
    choices = diffaugment_choices()
    assert len(choices) == 8 and all(TrainConfig(diffaugment=v).diffaugment == v for v in choices)


@pytest.mark.parametrize("amp,precision", [(True, "auto"), (False, "fp32")])
def test_a_config_stored_with_amp_loads_as_its_precision(amp, precision):
    stored = {k: v for k, v in TrainConfig().to_dict().items() if k != "precision"}
    assert TrainConfig.from_dict({**stored, "amp": amp}).precision == precision
