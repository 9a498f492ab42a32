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
    ("amp", "yes", "amp must be true or false"),
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
